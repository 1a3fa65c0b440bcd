package api

import (
	"math"
	"strconv"
	"strings"
	"unicode/utf16"
)

// jsonSyntaxError is a json.JSONDecodeError as Python's json module raises
// it: the reason worded like CPython's C scanner (Python 3.13) and the
// position in characters, not bytes.
type jsonSyntaxError struct {
	msg string
	pos int // character offset
}

// Python's limits that json.loads enforces with an exception other than
// JSONDecodeError, which FastAPI answers with 400: an int literal over
// 4300 digits (ValueError) and nesting past the recursion limit
// (RecursionError, at 1000 nested arrays or objects).
const (
	maxIntDigits = 4300
	maxDepth     = 1000
)

// errRefused unwinds the parser when a Python limit is hit.
var errRefused = &jsonSyntaxError{msg: "refused"}

// parsePythonJSON parses s the way json.loads(s) does: NaN, Infinity and
// -Infinity are accepted, a repeated key keeps its last value, and errors
// carry Python's messages and character positions. s is WTF-8 (UTF-8 that
// may hold lone surrogates, as decodeJSONBytes gives it); a lone \uD800
// escape is kept the same way. refused reports a Python limit hit first.
func parsePythonJSON(s string) (v *jsonValue, syntaxErr *jsonSyntaxError, refused bool) {
	p := jsonParser{s: s}
	idx := p.skipSpace(0)
	v, end, err := p.value(idx)
	if err == errRefused {
		return nil, nil, true
	}
	if err != nil {
		return nil, err, false
	}
	end = p.skipSpace(end)
	if end != len(s) {
		return nil, p.fail("Extra data", end), false
	}
	return v, nil, false
}

type jsonParser struct {
	s     string
	depth int // arrays and objects open at this point
}

func (p *jsonParser) fail(msg string, byteIdx int) *jsonSyntaxError {
	return &jsonSyntaxError{msg: msg, pos: charCount(p.s[:byteIdx])}
}

// charCount counts the characters of WTF-8 text: every byte that is not a
// continuation byte starts one (a lone surrogate is one character, as in
// Python, where utf8.RuneCountInString would count three).
func charCount(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i]&0xc0 != 0x80 {
			n++
		}
	}
	return n
}

func isJSONSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func (p *jsonParser) skipSpace(i int) int {
	for i < len(p.s) && isJSONSpace(p.s[i]) {
		i++
	}
	return i
}

// value is scan_once: it parses one value starting at i and returns the
// index after it. Anything that is not a value is "Expecting value" at i.
func (p *jsonParser) value(i int) (*jsonValue, int, *jsonSyntaxError) {
	s := p.s
	if i >= len(s) {
		return nil, i, p.fail("Expecting value", i)
	}
	switch s[i] {
	case '"':
		str, end, err := p.str(i + 1)
		if err != nil {
			return nil, i, err
		}
		return &jsonValue{kind: kindString, str: str}, end, nil
	case '{', '[':
		if p.depth+1 >= maxDepth {
			return nil, i, errRefused
		}
		p.depth++
		defer func() { p.depth-- }()
		if s[i] == '{' {
			return p.object(i + 1)
		}
		return p.array(i + 1)
	case 'n':
		if strings.HasPrefix(s[i:], "null") {
			return jsonNull, i + 4, nil
		}
	case 't':
		if strings.HasPrefix(s[i:], "true") {
			return &jsonValue{kind: kindBool, boolean: true}, i + 4, nil
		}
	case 'f':
		if strings.HasPrefix(s[i:], "false") {
			return &jsonValue{kind: kindBool}, i + 5, nil
		}
	case 'N':
		if strings.HasPrefix(s[i:], "NaN") {
			return &jsonValue{kind: kindFloat, num: math.NaN()}, i + 3, nil
		}
	case 'I':
		if strings.HasPrefix(s[i:], "Infinity") {
			return &jsonValue{kind: kindFloat, num: math.Inf(1)}, i + 8, nil
		}
	case '-':
		if strings.HasPrefix(s[i:], "-Infinity") {
			return &jsonValue{kind: kindFloat, num: math.Inf(-1)}, i + 9, nil
		}
	}
	return p.number(i)
}

// number is _match_number_unicode: an optional '-', an int part without
// leading zeros, then a fraction and an exponent only when digits follow
// (otherwise they are left for the caller, e.g. "1." is 1 then "Extra data").
func (p *jsonParser) number(start int) (*jsonValue, int, *jsonSyntaxError) {
	s := p.s
	i := start
	if s[i] == '-' {
		i++
		if i >= len(s) {
			return nil, start, p.fail("Expecting value", start)
		}
	}
	switch {
	case s[i] >= '1' && s[i] <= '9':
		i++
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	case s[i] == '0':
		i++
	default:
		return nil, start, p.fail("Expecting value", start)
	}
	isFloat := false
	if i+1 < len(s) && s[i] == '.' && isDigit(s[i+1]) {
		isFloat = true
		i += 2
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	}
	if i+1 < len(s) && (s[i] == 'e' || s[i] == 'E') {
		eStart := i
		i++
		if i+1 < len(s) && (s[i] == '-' || s[i] == '+') {
			i++
		}
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		if isDigit(s[i-1]) {
			isFloat = true
		} else {
			i = eStart
		}
	}
	lit := s[start:i]
	if isFloat {
		f, _ := strconv.ParseFloat(lit, 64) // overflow gives ±Inf, as float() does
		return &jsonValue{kind: kindFloat, num: f}, i, nil
	}
	if len(strings.TrimPrefix(lit, "-")) > maxIntDigits {
		return nil, i, errRefused
	}
	f, _ := strconv.ParseFloat(lit, 64)
	return &jsonValue{kind: kindInt, str: lit, num: f}, i, nil
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// object is _parse_object_unicode; i is just after '{'.
func (p *jsonParser) object(i int) (*jsonValue, int, *jsonSyntaxError) {
	s := p.s
	obj := &jsonValue{kind: kindObject}
	i = p.skipSpace(i)
	if i < len(s) && s[i] == '}' {
		return obj, i + 1, nil
	}
	for {
		if i >= len(s) || s[i] != '"' {
			return nil, i, p.fail("Expecting property name enclosed in double quotes", i)
		}
		key, end, err := p.str(i + 1)
		if err != nil {
			return nil, i, err
		}
		i = p.skipSpace(end)
		if i >= len(s) || s[i] != ':' {
			return nil, i, p.fail("Expecting ':' delimiter", i)
		}
		i = p.skipSpace(i + 1)
		val, end, err := p.value(i)
		if err != nil {
			return nil, i, err
		}
		obj.set(key, val)
		i = p.skipSpace(end)
		if i < len(s) && s[i] == '}' {
			return obj, i + 1, nil
		}
		if i >= len(s) || s[i] != ',' {
			return nil, i, p.fail("Expecting ',' delimiter", i)
		}
		comma := i
		i = p.skipSpace(i + 1)
		if i < len(s) && s[i] == '}' {
			return nil, i, p.fail("Illegal trailing comma before end of object", comma)
		}
	}
}

// array is _parse_array_unicode; i is just after '['.
func (p *jsonParser) array(i int) (*jsonValue, int, *jsonSyntaxError) {
	s := p.s
	arr := &jsonValue{kind: kindArray}
	i = p.skipSpace(i)
	if i < len(s) && s[i] == ']' {
		return arr, i + 1, nil
	}
	for {
		val, end, err := p.value(i)
		if err != nil {
			return nil, i, err
		}
		arr.items = append(arr.items, val)
		i = p.skipSpace(end)
		if i < len(s) && s[i] == ']' {
			return arr, i + 1, nil
		}
		if i >= len(s) || s[i] != ',' {
			return nil, i, p.fail("Expecting ',' delimiter", i)
		}
		comma := i
		i = p.skipSpace(i + 1)
		if i < len(s) && s[i] == ']' {
			return nil, i, p.fail("Illegal trailing comma before end of array", comma)
		}
	}
}

// str is scanstring_unicode (strict): i is just after the opening quote.
// A lone surrogate escape is kept in its 3-byte WTF-8 form, as Python keeps
// it in the str; the validator then refuses it (string_unicode).
func (p *jsonParser) str(i int) (string, int, *jsonSyntaxError) {
	s := p.s
	begin := i - 1
	var b []byte // nil until the first escape: most strings are copied once
	chunk := i
	for {
		j := i
		for j < len(s) && s[j] != '"' && s[j] != '\\' {
			if s[j] < 0x20 {
				return "", i, p.fail("Invalid control character at", j)
			}
			j++
		}
		if j >= len(s) {
			return "", i, p.fail("Unterminated string starting at", begin)
		}
		if s[j] == '"' {
			if b == nil {
				return s[chunk:j], j + 1, nil
			}
			b = append(b, s[chunk:j]...)
			return string(b), j + 1, nil
		}
		b = append(b, s[chunk:j]...)
		j++ // the backslash
		if j >= len(s) {
			return "", i, p.fail("Unterminated string starting at", begin)
		}
		c := s[j]
		if c != 'u' {
			var r byte
			switch c {
			case '"', '\\', '/':
				r = c
			case 'b':
				r = '\b'
			case 'f':
				r = '\f'
			case 'n':
				r = '\n'
			case 'r':
				r = '\r'
			case 't':
				r = '\t'
			default:
				return "", i, p.fail("Invalid \\escape", j-1)
			}
			b = append(b, r)
			i = j + 1
			chunk = i
			continue
		}
		j++ // the 'u'
		end := j + 4
		if end >= len(s) {
			return "", i, p.fail("Invalid \\uXXXX escape", j-1)
		}
		r, ok := hex4(s[j:end])
		if !ok {
			return "", i, p.fail("Invalid \\uXXXX escape", end-5)
		}
		j = end
		if utf16.IsSurrogate(r) && r < 0xdc00 && end+6 < len(s) && s[end] == '\\' && s[end+1] == 'u' {
			r2, ok := hex4(s[end+2 : end+6])
			if !ok {
				return "", i, p.fail("Invalid \\uXXXX escape", end+1)
			}
			if r2 >= 0xdc00 && r2 <= 0xdfff {
				r = utf16.DecodeRune(r, r2)
				j = end + 6
			}
		}
		b = appendWTF8(b, r)
		i = j
		chunk = i
	}
}

func hex4(h string) (rune, bool) {
	var r rune
	for k := 0; k < 4; k++ {
		d, ok := hexVal(h[k])
		if !ok {
			return 0, false
		}
		r = r<<4 | rune(d)
	}
	return r, true
}
