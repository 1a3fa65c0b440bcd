package api

import (
	"bytes"
	"encoding/binary"
	"io"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
)

// The byte order marks json.detect_encoding looks for, UTF-32 first
// (its little-endian mark starts with UTF-16's).
var (
	bomUTF8    = []byte{0xef, 0xbb, 0xbf}
	bomUTF16BE = []byte{0xfe, 0xff}
	bomUTF16LE = []byte{0xff, 0xfe}
	bomUTF32BE = []byte{0, 0, 0xfe, 0xff}
	bomUTF32LE = []byte{0xff, 0xfe, 0, 0}
)

// decodeJSONBytes is what json.loads does to bytes before it parses them:
// json.detect_encoding (a BOM, else the NUL pattern of the first bytes:
// UTF-8, UTF-16 or UTF-32, little or big endian), then decoding with
// 'surrogatepass'. The text is WTF-8: UTF-8 except that a lone surrogate
// (which Python keeps in a str) stays as its 3-byte encoding, for the
// validator to refuse. ok is false when the bytes do not decode.
func decodeJSONBytes(b []byte) (text string, ok bool) {
	switch {
	case bytes.HasPrefix(b, bomUTF32BE):
		return decodeUTF32(b[4:], binary.BigEndian)
	case bytes.HasPrefix(b, bomUTF32LE):
		return decodeUTF32(b[4:], binary.LittleEndian)
	case bytes.HasPrefix(b, bomUTF16BE):
		return decodeUTF16(b[2:], binary.BigEndian)
	case bytes.HasPrefix(b, bomUTF16LE):
		return decodeUTF16(b[2:], binary.LittleEndian)
	case bytes.HasPrefix(b, bomUTF8):
		return decodeUTF8(b[3:])
	}
	switch {
	case len(b) >= 4 && b[0] == 0 && b[1] != 0:
		return decodeUTF16(b, binary.BigEndian)
	case len(b) >= 4 && b[0] == 0:
		return decodeUTF32(b, binary.BigEndian)
	case len(b) >= 4 && b[1] == 0 && (b[2] != 0 || b[3] != 0):
		return decodeUTF16(b, binary.LittleEndian)
	case len(b) >= 4 && b[1] == 0:
		return decodeUTF32(b, binary.LittleEndian)
	case len(b) == 2 && b[0] == 0:
		return decodeUTF16(b, binary.BigEndian)
	case len(b) == 2 && b[1] == 0:
		return decodeUTF16(b, binary.LittleEndian)
	}
	return decodeUTF8(b)
}

// decodeUTF8 accepts UTF-8 plus encoded surrogates (ED A0..BF 80..BF), as
// Python's utf-8 codec does with 'surrogatepass'.
func decodeUTF8(b []byte) (string, bool) {
	for i := 0; i < len(b); {
		if b[i] < utf8.RuneSelf {
			i++
			continue
		}
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 {
			if i+2 < len(b) && b[i] == 0xed && b[i+1] >= 0xa0 && b[i+1] <= 0xbf && b[i+2]&0xc0 == 0x80 {
				i += 3
				continue
			}
			return "", false
		}
		i += size
	}
	return string(b), true
}

// decodeUTF16 decodes UTF-16 with 'surrogatepass': a pair is one character,
// a lone surrogate is kept (as WTF-8); an odd length does not decode.
func decodeUTF16(b []byte, order binary.ByteOrder) (string, bool) {
	if len(b)%2 != 0 {
		return "", false
	}
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i += 2 {
		r := rune(order.Uint16(b[i:]))
		if r >= 0xd800 && r < 0xdc00 && i+3 < len(b) {
			if r2 := rune(order.Uint16(b[i+2:])); r2 >= 0xdc00 && r2 <= 0xdfff {
				r = utf16.DecodeRune(r, r2)
				i += 2
			}
		}
		out = appendWTF8(out, r)
	}
	return string(out), true
}

// decodeUTF32 decodes UTF-32 with 'surrogatepass': code points above
// U+10FFFF or a length that is not a multiple of 4 do not decode.
func decodeUTF32(b []byte, order binary.ByteOrder) (string, bool) {
	if len(b)%4 != 0 {
		return "", false
	}
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i += 4 {
		r := order.Uint32(b[i:])
		if r > unicode.MaxRune {
			return "", false
		}
		out = appendWTF8(out, rune(r))
	}
	return string(out), true
}

// appendWTF8 is utf8.AppendRune, except that a surrogate code point is
// written as its 3-byte form instead of U+FFFD.
func appendWTF8(b []byte, r rune) []byte {
	if r >= 0xd800 && r <= 0xdfff {
		return append(b, 0xe0|byte(r>>12), 0x80|byte(r>>6)&0x3f, 0x80|byte(r)&0x3f)
	}
	return utf8.AppendRune(b, r)
}

// readBody reads and decodes a request body the way FastAPI does before it
// validates anything, and writes the answers that come first:
//   - 413 when the body is over limit (Content-Length first, then while reading);
//   - 400 "There was an error parsing the body" when it does not decode
//     (decodeJSONBytes), starts with a NUL byte and is not UTF-16/32 JSON,
//     has an int literal over Python's 4300 digits, or nests 1000 deep;
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
	text, decoded := decodeJSONBytes(raw)
	if !decoded {
		writeDetail(c, http.StatusBadRequest, "There was an error parsing the body")
		return nil, false
	}
	v, syntaxErr, refused := parsePythonJSON(text)
	switch {
	case refused, syntaxErr != nil && raw[0] == 0:
		// Python raised something other than JSONDecodeError (an int over
		// 4300 digits, nesting past the recursion limit), or the body starts
		// with a NUL byte and is not UTF-16/32 JSON: FastAPI's 400.
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

// requireBody adds FastAPI's error for an empty body or a JSON null one
// (a required body that is None counts as missing): missing at ["body"]
// with input null. It reports whether there is a body to validate.
func (e *valErrors) requireBody(body *jsonValue) bool {
	if body == nil || body.kind == kindNull {
		e.add("missing", bodyLoc, msgMissing, nil, "")
		return false
	}
	return true
}
