package api

import (
	"math"
	"strings"
	"unicode"
	"unicode/utf8"

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

// query returns the last value of a query parameter, reading the raw
// query as Starlette does (urllib.parse.parse_qsl, blank values kept):
// only '&' separates pairs (so "5;skip=1" is one value), a pair without
// '=' has the empty value, '+' is a space, and names and values are
// unquoted like urllib.parse.unquote (pythonUnquote).
func query(c *gin.Context, name string) (string, bool) {
	var value string
	found := false
	for raw := c.Request.URL.RawQuery; raw != ""; {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		if pair == "" {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		if pythonUnquote(k) == name {
			value, found = pythonUnquote(v), true
		}
	}
	return value, found
}

// pythonUnquote is urllib.parse.unquote(s.replace("+", " ")) on a query
// that Starlette decoded as latin-1: each run of ASCII has its %XX escapes
// decoded and the bytes read as UTF-8 with errors="replace"; an invalid
// escape stays as written; a raw non-ASCII byte is its latin-1 character.
func pythonUnquote(s string) string {
	if !strings.ContainsAny(s, "%+") && isASCII(s) {
		return s
	}
	out := make([]byte, 0, len(s))
	var run []byte // decoded bytes of the current ASCII run
	flush := func() {
		out = appendUTF8Replace(out, run)
		run = run[:0]
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= utf8.RuneSelf:
			flush()
			out = utf8.AppendRune(out, rune(c))
		case c == '+':
			run = append(run, ' ')
		case c == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]):
			hi, _ := hexVal(s[i+1])
			lo, _ := hexVal(s[i+2])
			run = append(run, hi<<4|lo)
			i += 2
		default:
			run = append(run, c)
		}
	}
	flush()
	return string(out)
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

func isHex(c byte) bool { _, ok := hexVal(c); return ok }

// appendUTF8Replace decodes b as Python's UTF-8 codec with
// errors="replace": one U+FFFD per maximal invalid subpart (a truncated
// sequence is one replacement, not one per byte).
func appendUTF8Replace(out, b []byte) []byte {
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r != utf8.RuneError || size > 1 {
			out = append(out, b[i:i+size]...)
			i += size
			continue
		}
		out = append(out, "\uFFFD"...)
		i += invalidSubpart(b[i:])
	}
	return out
}

// invalidSubpart is the length of the maximal subpart of an ill-formed
// sequence at the start of b (Unicode 15, §3.9, Table 3-7): a valid lead
// byte and the continuation bytes that could still follow it.
func invalidSubpart(b []byte) int {
	lead := b[0]
	var n int
	lo, hi := byte(0x80), byte(0xbf)
	switch {
	case lead >= 0xc2 && lead <= 0xdf:
		n = 2
	case lead >= 0xe0 && lead <= 0xef:
		n = 3
		if lead == 0xe0 {
			lo = 0xa0
		} else if lead == 0xed {
			hi = 0x9f
		}
	case lead >= 0xf0 && lead <= 0xf4:
		n = 4
		if lead == 0xf0 {
			lo = 0x90
		} else if lead == 0xf4 {
			hi = 0x8f
		}
	default:
		return 1
	}
	i := 1
	for ; i < n && i < len(b); i++ {
		if b[i] < lo || b[i] > hi {
			break
		}
		lo, hi = 0x80, 0xbf
	}
	return i
}

// queryInt validates the int query parameter f (its name, default and
// bounds, checked in pydantic-core's order: le before ge).
func (e *valErrors) queryInt(c *gin.Context, f *domain.Field, bounds boundRule) int {
	def := f.Default.(int)
	raw, ok := query(c, f.Name)
	if !ok {
		return def
	}
	l := []any{"query", f.Name}
	n, ok := parseLaxInt(raw)
	switch {
	case len(strings.TrimFunc(raw, unicode.IsSpace)) > maxIntDigits:
		// pydantic-core refuses to parse a longer string at all.
		e.add("int_parsing_size", l, msgIntParsingSize, strValue(raw), "")
	case !ok:
		e.add("int_parsing", l, msgIntParsing, strValue(raw), "")
	case e.check(l, strValue(raw), float64(n), bounds):
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

// pageParams validates skip and limit (domain.SkipParam, domain.LimitParam).
func (e *valErrors) pageParams(c *gin.Context) (skip, limit int) {
	skip = e.queryInt(c, &domain.SkipParam, skipRule)
	limit = e.queryInt(c, &domain.LimitParam, limitRule)
	return skip, limit
}
