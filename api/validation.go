package api

import (
	"fmt"
	"math"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/analysis-cache/service/domain"
)

// valError is one entry of a FastAPI 422 "detail" list. Keys are written in
// FastAPI's order: type, loc, msg, input, ctx (ctx only when present).
type valError struct {
	typ   string
	loc   []any // string or int parts
	msg   string
	input *jsonValue // nil writes null
	ctx   string     // pre-encoded JSON object, "" when absent
}

// valErrors collects the errors of one request in FastAPI's order: path,
// query, header, then body; within a model, fields in declaration order.
type valErrors []valError

func (e *valErrors) add(typ string, loc []any, msg string, input *jsonValue, ctx string) {
	*e = append(*e, valError{typ: typ, loc: loc, msg: msg, input: input, ctx: ctx})
}

// write answers 422 with the errors; false when it did not (no errors).
func (e valErrors) write(c *gin.Context) bool {
	if len(e) == 0 {
		return false
	}
	buf := make([]byte, 0, 256)
	buf = append(buf, `{"detail":[`...)
	for i, ve := range e {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, `{"type":`...)
		buf = domain.AppendJSONString(buf, ve.typ)
		buf = append(buf, `,"loc":[`...)
		for j, part := range ve.loc {
			if j > 0 {
				buf = append(buf, ',')
			}
			switch p := part.(type) {
			case int:
				buf = strconv.AppendInt(buf, int64(p), 10)
			case string:
				buf = domain.AppendJSONString(buf, p)
			}
		}
		buf = append(buf, `],"msg":`...)
		buf = domain.AppendJSONString(buf, ve.msg)
		buf = append(buf, `,"input":`...)
		input := ve.input
		if input == nil {
			input = jsonNull
		}
		var ok bool
		if buf, ok = input.appendPython(buf); !ok {
			// Starlette renders with allow_nan=False: echoing NaN or
			// Infinity raises, and the client gets a plain 500.
			writeInternal(c)
			return true
		}
		if ve.ctx != "" {
			buf = append(buf, `,"ctx":`...)
			buf = append(buf, ve.ctx...)
		}
		buf = append(buf, '}')
	}
	buf = append(buf, "]}"...)
	c.Data(http.StatusUnprocessableEntity, jsonContentType, buf)
	return true
}

// loc builds a location from a prefix and one more part; the prefix is
// copied so sibling locations never share a backing array.
func loc(prefix []any, part any) []any {
	out := make([]any, len(prefix)+1)
	copy(out, prefix)
	out[len(prefix)] = part
	return out
}

func strValue(s string) *jsonValue { return &jsonValue{kind: kindString, str: s} }

func ctxString(key, value string) string {
	return string(domain.AppendJSONString([]byte(`{"`+key+`":`), value)) + "}"
}

func ctxInt(key string, n int) string { return `{"` + key + `":` + strconv.Itoa(n) + "}" }

func plural(n int, word string) string {
	if n == 1 {
		return strconv.Itoa(n) + " " + word
	}
	return strconv.Itoa(n) + " " + word + "s"
}

const (
	msgMissing        = "Field required"
	msgStringType     = "Input should be a valid string"
	msgListType       = "Input should be a valid list"
	msgModelAttrs     = "Input should be a valid dictionary or object to extract fields from"
	msgUUIDType       = "UUID input should be a string, bytes or UUID object"
	msgFloatType      = "Input should be a valid number"
	msgFloatParsing   = "Input should be a valid number, unable to parse string as a number"
	msgIntParsing     = "Input should be a valid integer, unable to parse string as an integer"
	msgIntParsingSize = "Unable to parse input string as an integer, exceeded maximum size"
)

// missing adds Pydantic's "missing" error; input is the enclosing object.
func (e *valErrors) missing(l []any, obj *jsonValue) {
	e.add("missing", l, msgMissing, obj, "")
}

// stringRule is a str field's constraints, checked in pydantic-core's
// order: type (a lone surrogate is string_unicode), min_length,
// max_length, pattern, then the AfterValidator refusing U+0000. Lengths
// count characters.
type stringRule struct {
	min, max int
	pattern  string         // as declared, for the message
	match    *regexp.Regexp // pattern as Pydantic reads it; nil: none
	// stored marks text that goes to Postgres, which cannot hold U+0000:
	// it is refused here rather than accepted and lost later.
	stored bool
}

// storedString is the rule of a declared string field (all of them are
// stored). It panics on a pattern rustPattern refuses: a declaration
// error, caught when the package loads.
func storedString(f *domain.Field) stringRule {
	r := stringRule{min: f.MinLength, max: f.MaxLength, pattern: f.Pattern, stored: true}
	if f.Pattern != "" {
		re, err := rustPattern(f.Pattern)
		if err != nil {
			panic(fmt.Sprintf("field %s: %v", f.Name, err))
		}
		r.match = re
	}
	return r
}

const (
	msgStringUnicode = "Input should be a valid string, unable to parse raw data as a unicode string"
	msgNUL           = "Value error, must not contain NUL characters"
)

func (e *valErrors) str(l []any, v *jsonValue, r stringRule) (string, bool) {
	if v.kind != kindString {
		e.add("string_type", l, msgStringType, v, "")
		return "", false
	}
	if !utf8.ValidString(v.str) {
		// The parser keeps lone surrogates as their 3-byte (WTF-8) form, the
		// only invalid UTF-8 it lets through: Python's str holds them, and
		// pydantic-core cannot turn them into a Rust string.
		e.add("string_unicode", l, msgStringUnicode, v, "")
		return "", false
	}
	n := utf8.RuneCountInString(v.str)
	switch {
	case n < r.min:
		e.add("string_too_short", l, "String should have at least "+plural(r.min, "character"), v, ctxInt("min_length", r.min))
	case r.max > 0 && n > r.max:
		e.add("string_too_long", l, "String should have at most "+plural(r.max, "character"), v, ctxInt("max_length", r.max))
	case r.match != nil && !r.match.MatchString(v.str):
		e.add("string_pattern_mismatch", l, "String should match pattern '"+r.pattern+"'", v, ctxString("pattern", r.pattern))
	case r.stored && strings.IndexByte(v.str, 0) >= 0:
		e.add("value_error", l, msgNUL, v, `{"error":{}}`)
	default:
		return v.str, true
	}
	return "", false
}

// uuidValue validates a UUID field of a body: a string parsed like the uuid
// crate, anything else uuid_type.
func (e *valErrors) uuidValue(l []any, v *jsonValue) (uuid.UUID, bool) {
	if v.kind != kindString {
		e.add("uuid_type", l, msgUUIDType, v, "")
		return uuid.UUID{}, false
	}
	id, msg := parseUUID(v.str)
	if msg != "" {
		e.uuidParsing(l, v, msg)
		return uuid.UUID{}, false
	}
	return id, true
}

// uuidParsing adds Pydantic's uuid_parsing error for input at l, msg being
// the uuid crate's words (parseUUID). The one place that error is written,
// for path, query and body alike.
func (e *valErrors) uuidParsing(l []any, input *jsonValue, msg string) {
	e.add("uuid_parsing", l, "Input should be a valid UUID, "+msg, input, ctxString("error", msg))
}

// enumRule is an Enum field: its values and Pydantic's words for them
// ("'a', 'b' or 'c'").
type enumRule struct {
	values   []string
	expected string
}

func newEnumRule(f *domain.Field) enumRule {
	quoted := make([]string, len(f.Enum))
	for i, v := range f.Enum {
		quoted[i] = "'" + v + "'"
	}
	expected := quoted[len(quoted)-1]
	if len(quoted) > 1 {
		expected = strings.Join(quoted[:len(quoted)-1], ", ") + " or " + expected
	}
	return enumRule{values: f.Enum, expected: expected}
}

// enum validates an Enum field: only the exact value strings.
func (e *valErrors) enum(l []any, v *jsonValue, r enumRule) (string, bool) {
	if v.kind == kindString && slices.Contains(r.values, v.str) {
		return v.str, true
	}
	e.add("enum", l, "Input should be "+r.expected, v, ctxString("expected", r.expected))
	return "", false
}

// status validates the status enum.
func (e *valErrors) status(l []any, v *jsonValue) (domain.Status, bool) {
	s, ok := e.enum(l, v, statusRule)
	return domain.Status(s), ok
}

// boundRule is a number's inclusive bounds (Pydantic's ge and le) with
// their words in a message and their JSON in ctx: an integer field's as
// ints ({"le":100}), a float field's as Python floats ({"le":1.0}).
type boundRule struct {
	hasMin, hasMax bool
	min, max       float64
	minMsg, maxMsg string
	minCtx, maxCtx string
}

func newBoundRule(f *domain.Field) boundRule {
	var r boundRule
	number := func(x float64) (msg, ctx string) {
		msg = strconv.FormatFloat(x, 'f', -1, 64)
		if f.Kind == domain.KindNumber {
			return msg, string(domain.AppendPythonFloat(nil, x))
		}
		return msg, msg
	}
	if f.Minimum != nil {
		r.hasMin, r.min = true, *f.Minimum
		msg, ctx := number(r.min)
		r.minMsg, r.minCtx = "Input should be greater than or equal to "+msg, `{"ge":`+ctx+"}"
	}
	if f.Maximum != nil {
		r.hasMax, r.max = true, *f.Maximum
		msg, ctx := number(r.max)
		r.maxMsg, r.maxCtx = "Input should be less than or equal to "+msg, `{"le":`+ctx+"}"
	}
	return r
}

// check adds the error of the first bound f breaks, le before ge as
// pydantic-core checks them; NaN fails every comparison, so it is a
// less_than_equal error when there is an upper bound.
func (e *valErrors) check(l []any, v *jsonValue, f float64, r boundRule) bool {
	switch {
	case r.hasMax && !(f <= r.max):
		e.add("less_than_equal", l, r.maxMsg, v, r.maxCtx)
	case r.hasMin && f < r.min:
		e.add("greater_than_equal", l, r.minMsg, v, r.minCtx)
	default:
		return true
	}
	return false
}

// score validates a float in [0, 1] in lax mode: numbers, bools (as 0/1)
// and numeric strings are accepted; le is checked before ge.
func (e *valErrors) score(l []any, v *jsonValue) (float64, bool) {
	var f float64
	switch v.kind {
	case kindInt:
		if math.IsInf(v.num, 0) {
			// float(int) raises OverflowError: not a valid number.
			e.add("float_type", l, msgFloatType, v, "")
			return 0, false
		}
		f = v.num
	case kindFloat:
		f = v.num
	case kindBool:
		if v.boolean {
			f = 1
		}
	case kindString:
		var ok bool
		if f, ok = parseLaxFloat(v.str); !ok {
			e.add("float_parsing", l, msgFloatParsing, v, "")
			return 0, false
		}
	default:
		e.add("float_type", l, msgFloatType, v, "")
		return 0, false
	}
	if !e.check(l, v, f, scoreRule) {
		return 0, false
	}
	return f, true
}

// list validates a list field: list_type, then too_long before any item
// (pydantic-core stops at the first item over max_length and drops the item
// errors), then each item with its integer index, then too_short.
func (e *valErrors) list(l []any, v *jsonValue, min, max int, item func(l []any, v *jsonValue) bool) bool {
	if v.kind != kindArray {
		e.add("list_type", l, msgListType, v, "")
		return false
	}
	n := len(v.items)
	if max > 0 && n > max {
		e.add("too_long", l, "List should have at most "+plural(max, "item")+" after validation, not "+strconv.Itoa(n), v,
			`{"field_type":"List","max_length":`+strconv.Itoa(max)+`,"actual_length":`+strconv.Itoa(n)+"}")
		return false
	}
	ok := true
	for i, it := range v.items {
		if !item(loc(l, i), it) {
			ok = false
		}
	}
	if ok && n < min {
		e.add("too_short", l, "List should have at least "+plural(min, "item")+" after validation, not "+strconv.Itoa(n), v,
			`{"field_type":"List","min_length":`+strconv.Itoa(min)+`,"actual_length":`+strconv.Itoa(n)+"}")
		return false
	}
	return ok
}

// tagList validates tags (domain.TagsField): a list of strings.
func (e *valErrors) tagList(l []any, v *jsonValue) ([]string, bool) {
	tags := make([]string, 0, len(v.items))
	ok := e.list(l, v, domain.TagsField.MinLength, domain.TagsField.MaxLength, func(l []any, it *jsonValue) bool {
		s, ok := e.str(l, it, tagRule)
		tags = append(tags, s)
		return ok
	})
	return tags, ok
}

// modelObject checks that a model's input is an object (FastAPI validates
// with from_attributes=True, hence model_attributes_type).
func (e *valErrors) modelObject(l []any, v *jsonValue) bool {
	if v.kind != kindObject {
		e.add("model_attributes_type", l, msgModelAttrs, v, "")
		return false
	}
	return true
}

// parseLaxFloat is pydantic-core's str_as_float: surrounding whitespace is
// ignored, the syntax is Rust's f64 grammar (inf, infinity and nan in any
// case included), and underscores between digits are allowed as in Python.
func parseLaxFloat(s string) (float64, bool) {
	s = strings.TrimFunc(s, unicode.IsSpace)
	if unsigned := strings.TrimLeft(s, "+-"); len(s)-len(unsigned) == 1 && strings.EqualFold(unsigned, "nan") {
		return math.NaN(), true // Rust reads a signed NaN; strconv does not
	}
	if !rustFloatSyntax(s) {
		stripped, ok := stripUnderscores(s)
		if !ok || !rustFloatSyntax(stripped) {
			return 0, false
		}
		s = stripped
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil && f == 0 {
		return 0, false
	}
	return f, true // a range error still gives ±Inf or 0, as Rust does
}

func rustFloatSyntax(s string) bool {
	if s != "" && (s[0] == '+' || s[0] == '-') {
		s = s[1:]
	}
	switch strings.ToLower(s) {
	case "inf", "infinity", "nan":
		return true
	}
	i, digits := 0, 0
	for i < len(s) && isDigit(s[i]) {
		i++
		digits++
	}
	if i < len(s) && s[i] == '.' {
		i++
		for i < len(s) && isDigit(s[i]) {
			i++
			digits++
		}
	}
	if digits == 0 {
		return false
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		start := i
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		if i == start {
			return false
		}
	}
	return i == len(s)
}

// stripUnderscores removes underscores that sit between two digits, as
// Python's numeric literals allow; any other underscore fails.
func stripUnderscores(s string) (string, bool) {
	if !strings.Contains(s, "_") {
		return s, false
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '_' {
			if i == 0 || i == len(s)-1 || !isDigit(s[i-1]) || !isDigit(s[i+1]) {
				return "", false
			}
			continue
		}
		b = append(b, s[i])
	}
	return string(b), true
}

// parseLaxInt is pydantic-core's str_as_int: whitespace trimmed, an
// optional sign, digits (Python underscores allowed), and a fraction of
// zeros only ("5.00" is 5, "5." is not an integer). The value saturates at the int64 range, which
// no limit of this API comes near.
func parseLaxInt(s string) (int64, bool) {
	s = strings.TrimFunc(s, unicode.IsSpace)
	if n, ok := parseSignedDigits(s); ok {
		return n, true
	}
	if dot := strings.IndexByte(s, '.'); dot >= 0 && dot+1 < len(s) && strings.Trim(s[dot+1:], "0") == "" {
		if n, ok := parseSignedDigits(s[:dot]); ok {
			return n, true
		}
	}
	if stripped, ok := stripUnderscores(s); ok {
		return parseSignedDigits(stripped)
	}
	return 0, false
}

func parseSignedDigits(s string) (int64, bool) {
	neg := false
	if s != "" && (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-'
		s = s[1:]
	}
	if s == "" {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return 0, false
		}
		if n < (1<<63-1)/10 {
			n = n*10 + int64(s[i]-'0')
		} else {
			n = 1<<63 - 1 // saturate: beyond any bound we check
		}
	}
	if neg {
		n = -n
	}
	return n, true
}
