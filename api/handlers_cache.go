package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/analysis-cache/service/cache"
	"github.com/analysis-cache/service/domain"
)

// authorize is the admin dependency (FastAPI's HTTPBearer plus the token
// check). It runs after the body is decoded and before it is validated,
// the order in which FastAPI reads the body, then solves dependencies (a
// raised HTTPException wins), then reports validation errors. The token is
// compared in constant time over SHA-256 digests, so neither its content
// nor its length leaks through timing.
func (h *handlers) authorize(c *gin.Context) bool {
	if h.d.AdminToken == "" {
		h.log.WarnContext(c.Request.Context(), "admin API is disabled: set ADMIN_TOKEN to enable it", "path", c.Request.URL.Path)
		writeDetail(c, http.StatusServiceUnavailable, "Admin API is disabled")
		return false
	}
	// HTTPBearer: the scheme is what precedes the first space, the
	// credentials the rest with surrounding whitespace stripped.
	scheme, credentials, _ := strings.Cut(c.GetHeader("Authorization"), " ")
	credentials = strings.TrimFunc(credentials, isPythonSpace)
	if scheme == "" || credentials == "" || !strings.EqualFold(scheme, "bearer") {
		c.Header("WWW-Authenticate", "Bearer")
		writeDetail(c, http.StatusUnauthorized, "Not authenticated")
		return false
	}
	got, want := sha256.Sum256([]byte(credentials)), sha256.Sum256([]byte(h.d.AdminToken))
	if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
		c.Header("WWW-Authenticate", "Bearer")
		writeDetail(c, http.StatusUnauthorized, "Invalid authentication credentials")
		return false
	}
	return true
}

// isPythonSpace is str.isspace for a header character (Starlette decodes
// headers as latin-1, so each byte is one character).
func isPythonSpace(r rune) bool {
	switch r {
	case ' ', '\t', '\n', '\v', '\f', '\r', 0x1c, 0x1d, 0x1e, 0x1f, 0x85, 0xa0:
		return true
	}
	return false
}

// readCacheStats godoc
//
//	@Summary		Read Cache Stats
//	@Description	Admin: this process's cache counters (hits, misses, errors), the write-behind queue and the stampede guard.
//	@Tags			cache
//	@ID				read_cache_stats_api_v1_cache_stats_get
//	@Produce		json
//	@Security		HTTPBearer
//	@Success		200	{object}	CacheStats
//	@Failure		401	{object}	HTTPError
//	@Failure		503	{object}	HTTPError
//	@Router			/api/v1/cache/stats [get]
func (h *handlers) readCacheStats(c *gin.Context) {
	if !h.authorize(c) {
		return
	}
	s, err := h.d.Admin.Stats(c.Request.Context())
	if err != nil {
		h.writeError(c, err)
		return
	}
	c.Data(http.StatusOK, jsonContentType, appendCacheStats(make([]byte, 0, 256), s))
}

// appendCacheStats writes CacheStats in the contract's key order.
func appendCacheStats(b []byte, s cache.Stats) []byte {
	num := func(b []byte, key string, n int64) []byte {
		b = append(b, '"')
		b = append(b, key...)
		b = append(b, `":`...)
		return strconv.AppendInt(b, n, 10)
	}
	b = num(append(b, '{'), "hits", s.Hits)
	b = num(append(b, ','), "misses", s.Misses)
	b = append(b, `,"hit_ratio":`...)
	b = domain.AppendPydanticFloat(b, s.HitRatio)
	b = num(append(b, ','), "errors", s.Errors)
	b = num(append(b, `,"write_behind":{`...), "pending", s.WriteBehind.Pending)
	b = num(append(b, ','), "flushed", s.WriteBehind.Flushed)
	b = num(append(b, ','), "retried", s.WriteBehind.Retried)
	b = num(append(b, ','), "dead_lettered", s.WriteBehind.DeadLettered)
	b = num(append(b, `},"stampede":{`...), "computations", s.Stampede.Computations)
	b = num(append(b, ','), "coalesced", s.Stampede.Coalesced)
	b = num(append(b, ','), "lock_timeouts", s.Stampede.LockTimeouts)
	return append(b, "}}"...)
}

// invalidateCache godoc
//
//	@Summary		Invalidate Cache
//	@Description	Admin: key, pattern (glob), tag or namespace invalidation, always inside the service's key prefix; the write-behind stream is never touched.
//	@Tags			cache
//	@ID				invalidate_cache_api_v1_cache_invalidate_post
//	@Accept			json
//	@Produce		json
//	@Security		HTTPBearer
//	@Param			request	body		CacheInvalidate	true	"Exactly one selector"
//	@Success		200		{object}	CacheInvalidated
//	@Failure		401		{object}	HTTPError
//	@Failure		413		{object}	HTTPError
//	@Failure		422		{object}	HTTPValidationError
//	@Failure		503		{object}	HTTPError
//	@Router			/api/v1/cache/invalidate [post]
func (h *handlers) invalidateCache(c *gin.Context) {
	body, ok := h.readBody(c, h.d.MaxBodyBytes)
	if !ok || !h.authorize(c) {
		return
	}
	var errs valErrors
	var sel cache.Selector
	if errs.requireBody(body) {
		sel = errs.validateInvalidate(body)
	}
	if errs.write(c) {
		return
	}
	n, err := h.d.Admin.Invalidate(c.Request.Context(), sel)
	if err != nil {
		h.writeError(c, err)
		return
	}
	b := strconv.AppendInt([]byte(`{"invalidated":`), n, 10)
	c.Data(http.StatusOK, jsonContentType, append(b, '}'))
}

// flushWriteBehind godoc
//
//	@Summary		Flush Write Behind
//	@Description	Admin: write every queued write-behind item to Postgres now; answers once they are committed.
//	@Tags			cache
//	@ID				flush_write_behind_api_v1_cache_write_behind_flush_post
//	@Produce		json
//	@Security		HTTPBearer
//	@Success		200	{object}	WriteBehindFlushed
//	@Failure		401	{object}	HTTPError
//	@Failure		503	{object}	HTTPError
//	@Router			/api/v1/cache/write-behind/flush [post]
func (h *handlers) flushWriteBehind(c *gin.Context) {
	if !h.authorize(c) {
		return
	}
	n, err := h.d.Ingest.Flush(c.Request.Context())
	if err != nil {
		h.writeError(c, err)
		return
	}
	b := strconv.AppendInt([]byte(`{"flushed":`), int64(n), 10)
	c.Data(http.StatusOK, jsonContentType, append(b, '}'))
}
