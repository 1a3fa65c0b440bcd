package api

import (
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/analysis-cache/service/cache"
)

// Header names in canonical form, so setting them does not re-canonicalise.
const (
	headerETag         = "Etag"
	headerXCache       = "X-Cache"
	headerCachePattern = "X-Cache-Pattern"
)

// setCacheHeaders writes X-Cache and X-Cache-Pattern when the result says
// where it came from (a 404 from a negative entry included).
func setCacheHeaders(c *gin.Context, r cache.Result) {
	if r.Status == "" {
		return
	}
	h := c.Writer.Header()
	h[headerXCache] = headerValue(string(r.Status))
	if r.Pattern != "" {
		h[headerCachePattern] = headerValue(r.Pattern)
	}
}

// cacheHeaderValues are the X-Cache and X-Cache-Pattern values, built once:
// every cached read sets two of them, and net/http only reads the slices.
var cacheHeaderValues = func() map[string][]string {
	m := map[string][]string{}
	for _, v := range []string{
		string(cache.Hit), string(cache.Miss), string(cache.Stale), string(cache.Bypass),
		cache.PatternAside, cache.PatternWriteThrough, cache.PatternWriteBehind,
		cache.PatternNamespace, cache.PatternReadThrough, cache.PatternStampede,
	} {
		m[v] = []string{v}
	}
	return m
}()

// headerValue returns the one-value slice for v, shared when v is known.
func headerValue(v string) []string {
	if s, ok := cacheHeaderValues[v]; ok {
		return s
	}
	return []string{v}
}

// etag is the strong ETag of a version: "<version>".
func etag(version int64) string {
	var buf [24]byte
	b := append(buf[:0], '"')
	b = strconv.AppendInt(b, version, 10)
	return string(append(b, '"'))
}

// noneMatch reports whether If-None-Match (its first line) names tag:
// a comma-separated list compared weakly, as RFC 9110 wants for
// If-None-Match, so W/"2" equals "2"; "*" (or W/*) matches any current
// representation.
func noneMatch(header, tag string) bool {
	for header != "" {
		var v string
		v, header, _ = strings.Cut(header, ",")
		v = strings.TrimPrefix(strings.TrimSpace(v), "W/")
		if v == "*" || v == tag {
			return true
		}
	}
	return false
}

// neverMatches is the If-Match version no analysis has (versions start at
// 1): the repository still looks the analysis up first, so an unknown id
// is 404 and a known one 412.
var neverMatches int64

// ifMatchVersion reads If-Match (its first line) for PATCH and DELETE, as
// RFC 9110 §13.1.1 defines it: a comma-separated list of entity tags that
// matches when one is "*" or equals the current "<version>" by strong
// comparison (a weak tag, an unquoted 1 or "01" never equal "1").
//
// It returns nil when the header is absent or holds "*" (any version), the
// one version a list names, or &neverMatches when it names none. When the
// list names several versions, the current one is read (cache-aside) to
// pick the one that can match; the repository then checks it atomically,
// so a change in between still answers 412. The error is that read's
// (404 for an unknown id).
func (h *handlers) ifMatchVersion(c *gin.Context, id uuid.UUID) (*int64, error) {
	vs := c.Request.Header["If-Match"]
	if len(vs) == 0 {
		return nil, nil
	}
	var versions []int64
	for header := vs[0]; header != ""; {
		var v string
		v, header, _ = strings.Cut(header, ",")
		v = strings.TrimSpace(v)
		if v == "*" {
			return nil, nil
		}
		if n, ok := strongVersion(v); ok && !slices.Contains(versions, n) {
			versions = append(versions, n)
		}
	}
	switch len(versions) {
	case 0:
		return &neverMatches, nil
	case 1:
		return &versions[0], nil
	}
	r, err := h.d.Analyses.Get(c.Request.Context(), id)
	if err != nil {
		return nil, err
	}
	if slices.Contains(versions, r.Version) {
		return &r.Version, nil
	}
	return &neverMatches, nil
}

// strongVersion reads a strong entity tag that etag could have written:
// a quoted decimal version without sign or leading zero.
func strongVersion(v string) (int64, bool) {
	if len(v) < 3 || v[0] != '"' || v[len(v)-1] != '"' {
		return 0, false
	}
	digits := v[1 : len(v)-1]
	n, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || n < 1 || strconv.FormatInt(n, 10) != digits {
		return 0, false
	}
	return n, true
}

// writeResult answers a cached read: its headers, then the error or the body.
func (h *handlers) writeResult(c *gin.Context, r cache.Result, err error) {
	setCacheHeaders(c, r)
	if err != nil {
		h.writeError(c, err)
		return
	}
	c.Data(http.StatusOK, jsonContentType, r.Body)
}
