package api

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

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

// noneMatch reports whether If-None-Match names tag (weak comparison, as
// RFC 9110 wants for If-None-Match; "*" matches any current representation).
func noneMatch(header, tag string) bool {
	for header != "" {
		var v string
		v, header, _ = strings.Cut(header, ",")
		v = strings.TrimSpace(v)
		if v == "*" || strings.TrimPrefix(v, "W/") == tag {
			return true
		}
	}
	return false
}

// ifMatchVersion parses If-Match for PATCH and DELETE. Absent or "*": nil
// (any version). `"<n>"` or a bare n: that version. Anything else (a weak
// tag, a list, garbage) can never match, so ok is false and the caller
// answers 412.
func ifMatchVersion(c *gin.Context) (version *int64, ok bool) {
	vs := c.Request.Header["If-Match"]
	if len(vs) == 0 {
		return nil, true
	}
	if len(vs) > 1 {
		return nil, false
	}
	v := strings.TrimSpace(vs[0])
	if v == "*" {
		return nil, true
	}
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		v = v[1 : len(v)-1]
	}
	if v == "" || strings.TrimLeft(v, "0123456789") != "" {
		return nil, false
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return nil, false
	}
	return &n, true
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
