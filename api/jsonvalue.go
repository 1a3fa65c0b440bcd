package api

import (
	"math"
	"strings"
	"unicode/utf8"

	"github.com/analysis-cache/service/domain"
)

// jsonKind is the Python type json.loads would have produced.
type jsonKind uint8

const (
	kindNull jsonKind = iota
	kindBool
	kindInt   // Python int: the literal is kept, any size
	kindFloat // Python float
	kindString
	kindArray
	kindObject
)

// jsonValue is a parsed JSON value that remembers what Python would see:
// object keys keep their request order (a repeated key keeps its first
// position and its last value, like a dict), ints keep their literal, so a
// 422 can echo the input exactly as FastAPI does.
type jsonValue struct {
	kind    jsonKind
	boolean bool
	str     string  // kindString: the text; kindInt: the literal
	num     float64 // kindFloat and kindInt (approximate for huge ints)
	items   []*jsonValue
	members []jsonMember
}

// jsonMember is one key of an object, in request order.
type jsonMember struct {
	key string
	val *jsonValue
}

var jsonNull = &jsonValue{kind: kindNull}

// get returns the member named key, or nil when the object has none.
func (v *jsonValue) get(key string) *jsonValue {
	for i := range v.members {
		if v.members[i].key == key {
			return v.members[i].val
		}
	}
	return nil
}

// set adds or replaces a member the way a Python dict does.
func (v *jsonValue) set(key string, val *jsonValue) {
	for i := range v.members {
		if v.members[i].key == key {
			v.members[i].val = val
			return
		}
	}
	v.members = append(v.members, jsonMember{key, val})
}

// appendPython appends v as Starlette's JSONResponse writes it
// (json.dumps, ensure_ascii=False, compact). It reports false when v holds
// a non-finite float: Starlette renders with allow_nan=False, so FastAPI
// answers 500 instead of a 422 echoing it.
func (v *jsonValue) appendPython(buf []byte) ([]byte, bool) {
	switch v.kind {
	case kindNull:
		return append(buf, "null"...), true
	case kindBool:
		if v.boolean {
			return append(buf, "true"...), true
		}
		return append(buf, "false"...), true
	case kindInt:
		return append(buf, normalizeIntLiteral(v.str)...), true
	case kindFloat:
		if math.IsNaN(v.num) || math.IsInf(v.num, 0) {
			return buf, false
		}
		return domain.AppendPythonFloat(buf, v.num), true
	case kindString:
		return domain.AppendJSONString(buf, replaceSurrogates(v.str)), true
	case kindArray:
		buf = append(buf, '[')
		for i, it := range v.items {
			if i > 0 {
				buf = append(buf, ',')
			}
			var ok bool
			if buf, ok = it.appendPython(buf); !ok {
				return buf, false
			}
		}
		return append(buf, ']'), true
	default:
		buf = append(buf, '{')
		for i, m := range v.members {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = domain.AppendJSONString(buf, replaceSurrogates(m.key))
			buf = append(buf, ':')
			var ok bool
			if buf, ok = m.val.appendPython(buf); !ok {
				return buf, false
			}
		}
		return append(buf, '}'), true
	}
}

// normalizeIntLiteral returns the literal as Python's int repr writes it:
// "-0" is 0 (JSON forbids leading zeros otherwise).
func normalizeIntLiteral(lit string) string {
	if strings.TrimLeft(lit, "-0") == "" {
		return "0"
	}
	return lit
}

// replaceSurrogates writes U+FFFD for each lone surrogate of WTF-8 text
// (the 3-byte form decodeJSONBytes and the parser keep), which is how the
// input of a string_unicode error is echoed. Valid UTF-8 is returned as is.
func replaceSurrogates(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 && s[i] == 0xed && i+2 < len(s) {
			size = 3 // the parser lets no other invalid UTF-8 through
		}
		b = utf8.AppendRune(b, r)
		i += size
	}
	return string(b)
}
