package api

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
)

var utf8BOM = []byte{0xef, 0xbb, 0xbf}

// readBody reads and decodes a request body the way FastAPI does before it
// validates anything, and writes the answers that come first:
//   - 413 when the body is over limit (Content-Length first, then while reading);
//   - 400 "There was an error parsing the body" when it is not UTF-8 (or has an
//     int literal over Python's 4300 digits);
//   - 422 json_invalid when a JSON content type carries malformed JSON.
//
// It returns nil for an empty body (the caller reports "missing" after the
// path and query errors), the parsed value for a JSON content type, and the
// raw text as a string otherwise (FastAPI does not parse it). ok is false
// when a response was written.
func (h *handlers) readBody(c *gin.Context, limit int64) (body *jsonValue, ok bool) {
	if c.Request.ContentLength > limit {
		writeDetail(c, http.StatusRequestEntityTooLarge, "Request body too large")
		return nil, false
	}
	raw, err := io.ReadAll(io.LimitReader(c.Request.Body, limit+1))
	if int64(len(raw)) > limit {
		writeDetail(c, http.StatusRequestEntityTooLarge, "Request body too large")
		return nil, false
	}
	if err != nil {
		writeDetail(c, http.StatusBadRequest, "There was an error parsing the body")
		return nil, false
	}
	if len(raw) == 0 {
		return nil, true
	}
	if !isJSONContentType(c.GetHeader("Content-Type")) {
		if !utf8.Valid(raw) {
			writeDetail(c, http.StatusBadRequest, "There was an error parsing the body")
			return nil, false
		}
		return strValue(string(raw)), true
	}
	// json.loads(bytes) decodes with utf-8-sig, so a leading BOM is dropped.
	raw = bytes.TrimPrefix(raw, utf8BOM)
	if !utf8.Valid(raw) {
		writeDetail(c, http.StatusBadRequest, "There was an error parsing the body")
		return nil, false
	}
	v, syntaxErr, tooLong := parsePythonJSON(string(raw))
	switch {
	case tooLong:
		writeDetail(c, http.StatusBadRequest, "There was an error parsing the body")
		return nil, false
	case syntaxErr != nil:
		errs := valErrors{{
			typ: "json_invalid", loc: []any{"body", syntaxErr.pos}, msg: "JSON decode error",
			input: &jsonValue{kind: kindObject}, ctx: ctxString("error", syntaxErr.msg),
		}}
		errs.write(c)
		return nil, false
	}
	return v, true
}

// isJSONContentType is FastAPI's test, through email.message: the media
// type (before ';', trimmed, lower-cased, exactly one '/') is application/json
// or application/*+json. A missing header is not JSON.
func isJSONContentType(header string) bool {
	mt, _, _ := strings.Cut(header, ";")
	mt = strings.ToLower(strings.TrimSpace(mt))
	main, sub, ok := strings.Cut(mt, "/")
	if !ok || strings.Contains(sub, "/") || main != "application" {
		return false
	}
	return sub == "json" || strings.HasSuffix(sub, "+json")
}

// requireBody adds FastAPI's error for an empty body: missing at ["body"]
// with input null. It reports whether there is a body to validate.
func (e *valErrors) requireBody(body *jsonValue) bool {
	if body == nil {
		e.add("missing", bodyLoc, msgMissing, nil, "")
		return false
	}
	return true
}
