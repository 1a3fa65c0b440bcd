package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/analysis-cache/service/domain"
)

const (
	// statusClientClosedRequest is recorded (not sent: the client is gone)
	// when a request's work was cancelled because its client disconnected.
	statusClientClosedRequest = 499

	jsonContentType = "application/json"
	textContentType = "text/plain; charset=utf-8"
	// retryAfter is what every 503 tells the client to wait, in seconds.
	retryAfter = "5"
)

// errorStatus is the one table from domain error codes to HTTP answers.
// detail, when set, replaces the error's message (the contract fixes it).
var errorStatus = map[string]struct {
	status int
	detail string
	retry  bool
}{
	domain.ENOTFOUND:         {status: http.StatusNotFound},
	domain.EPRECONDITION:     {status: http.StatusPreconditionFailed, detail: "Precondition Failed"},
	domain.ECONFLICT:         {status: http.StatusConflict},
	domain.EINVALID:          {status: http.StatusUnprocessableEntity},
	domain.EUNAVAILABLE:      {status: http.StatusServiceUnavailable, detail: "Database unavailable", retry: true},
	domain.EQUEUEFULL:        {status: http.StatusServiceUnavailable, detail: "Write-behind queue is full", retry: true},
	domain.EQUEUEUNAVAILABLE: {status: http.StatusServiceUnavailable, detail: "Write-behind queue unavailable", retry: true},
	domain.ECACHEUNAVAILABLE: {status: http.StatusServiceUnavailable, detail: "Cache unavailable", retry: true},
}

// writeError answers err through errorStatus. Internal errors (any code not
// in the table) are logged at error level and answered as Starlette does,
// with a plain-text 500 that reveals nothing; the others are expected
// outcomes and are not logged here (the access log has them).
func (h *handlers) writeError(c *gin.Context, err error) {
	// The client hung up and the work was cancelled with it: nothing can be
	// answered and nothing failed. 499 (nginx's "client closed request")
	// keeps it out of the 5xx counts and the error log.
	if errors.Is(err, context.Canceled) && c.Request.Context().Err() != nil {
		c.AbortWithStatus(statusClientClosedRequest)
		return
	}
	code := domain.ErrorCode(err)
	entry, known := errorStatus[code]
	if !known {
		h.log.LogAttrs(c.Request.Context(), slog.LevelError, "internal error",
			slog.String("request_id", c.Writer.Header().Get(requestIDHeader)),
			slog.String("route", c.FullPath()), slog.Any("error", err))
		writeInternal(c)
		return
	}
	detail := entry.detail
	if detail == "" {
		detail = domain.ErrorMessage(err)
	}
	if entry.retry {
		c.Header("Retry-After", retryAfter)
	}
	writeDetail(c, entry.status, detail)
}

// writeDetail answers {"detail":"<message>"}, FastAPI's HTTPException body.
func writeDetail(c *gin.Context, status int, detail string) {
	buf := make([]byte, 0, 32+len(detail))
	buf = append(buf, `{"detail":`...)
	buf = domain.AppendJSONString(buf, detail)
	buf = append(buf, '}')
	c.Data(status, jsonContentType, buf)
}

// writeInternal answers Starlette's ServerErrorMiddleware 500.
func writeInternal(c *gin.Context) {
	c.Data(http.StatusInternalServerError, textContentType, []byte("Internal Server Error"))
}
