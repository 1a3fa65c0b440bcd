package api

import (
	"math"
	"strconv"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/analysis-cache/service/domain"
)

// Path and query parameters, validated as FastAPI does: inputs stay
// strings in the error echo, a repeated query parameter counts by its last
// value (Starlette's QueryParams), and an empty value is validated, not
// treated as absent.

// pathUUID validates a UUID path parameter.
func (e *valErrors) pathUUID(c *gin.Context, name string) uuid.UUID {
	raw := c.Param(name)
	id, msg := parseUUID(raw)
	if msg != "" {
		e.uuidParsing([]any{"path", name}, strValue(raw), msg)
	}
	return id
}

// query returns the last value of a query parameter.
func query(c *gin.Context, name string) (string, bool) {
	vs, ok := c.GetQueryArray(name)
	if !ok {
		return "", false
	}
	return vs[len(vs)-1], true
}

// queryInt validates an int query parameter with ge and le (le <= 0: none),
// checked in pydantic-core's order (le before ge).
func (e *valErrors) queryInt(c *gin.Context, name string, def, ge, le int) int {
	raw, ok := query(c, name)
	if !ok {
		return def
	}
	l := []any{"query", name}
	n, ok := parseLaxInt(raw)
	switch {
	case !ok:
		e.add("int_parsing", l, msgIntParsing, strValue(raw), "")
	case le > 0 && n > int64(le):
		e.add("less_than_equal", l, "Input should be less than or equal to "+strconv.Itoa(le), strValue(raw), ctxInt("le", le))
	case n < int64(ge):
		e.add("greater_than_equal", l, "Input should be greater than or equal to "+strconv.Itoa(ge), strValue(raw), ctxInt("ge", ge))
	default:
		if n > math.MaxInt {
			return math.MaxInt
		}
		return int(n)
	}
	return def
}

// queryUUID validates an optional UUID query parameter.
func (e *valErrors) queryUUID(c *gin.Context, name string) *uuid.UUID {
	raw, ok := query(c, name)
	if !ok {
		return nil
	}
	id, msg := parseUUID(raw)
	if msg != "" {
		e.uuidParsing([]any{"query", name}, strValue(raw), msg)
		return nil
	}
	return &id
}

// queryStatus validates an optional status query parameter.
func (e *valErrors) queryStatus(c *gin.Context, name string) *domain.Status {
	raw, ok := query(c, name)
	if !ok {
		return nil
	}
	s, ok := e.status([]any{"query", name}, strValue(raw))
	if !ok {
		return nil
	}
	return &s
}

// pageParams validates skip (>= 0, default 0) and limit (1..100, default 20).
func (e *valErrors) pageParams(c *gin.Context) (skip, limit int) {
	skip = e.queryInt(c, "skip", 0, 0, 0)
	limit = e.queryInt(c, "limit", domain.DefaultPageLimit, 1, domain.MaxPageLimit)
	return skip, limit
}
