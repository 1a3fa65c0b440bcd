package domain

import (
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// The encoders below write exactly the bytes FastAPI writes for these
// models (Starlette's json.dumps with ensure_ascii=False and compact
// separators, Pydantic v2 datetimes, Python float repr), so a client cannot
// tell the two services apart and a cached body is byte-identical to a
// fresh one. They are hand-written because they sit on every request path;
// see cache/codec_bench_test.go for the numbers against encoding/json.

// AppendJSON appends the AnalysisPublic JSON of a to buf.
func (a *Analysis) AppendJSON(buf []byte) []byte {
	buf = append(buf, `{"id":"`...)
	buf = AppendUUID(buf, a.ID)
	buf = append(buf, `","owner_id":"`...)
	buf = AppendUUID(buf, a.OwnerID)
	buf = append(buf, `","url":`...)
	buf = AppendJSONString(buf, a.URL)
	buf = append(buf, `,"title":`...)
	buf = AppendJSONString(buf, a.Title)
	buf = append(buf, `,"status":`...)
	buf = AppendJSONString(buf, string(a.Status))
	buf = append(buf, `,"summary":`...)
	buf = appendStringPtr(buf, a.Summary)
	buf = append(buf, `,"score":`...)
	buf = appendFloatPtr(buf, a.Score)
	buf = append(buf, `,"tags":[`...)
	for i, t := range a.Tags {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = AppendJSONString(buf, t)
	}
	buf = append(buf, `],"notes":`...)
	buf = appendStringPtr(buf, a.Notes)
	buf = append(buf, `,"version":`...)
	buf = strconv.AppendInt(buf, a.Version, 10)
	buf = append(buf, `,"created_at":`...)
	buf = AppendJSONTime(buf, a.CreatedAt)
	buf = append(buf, `,"updated_at":`...)
	buf = AppendJSONTime(buf, a.UpdatedAt)
	return append(buf, '}')
}

// AppendJSON appends the AnalysesPublic JSON of p to buf.
func (p *Page) AppendJSON(buf []byte) []byte {
	buf = append(buf, `{"data":[`...)
	for i := range p.Data {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = p.Data[i].AppendJSON(buf)
	}
	buf = append(buf, `],"count":`...)
	buf = strconv.AppendInt(buf, p.Count, 10)
	return append(buf, '}')
}

// AppendJSON appends the AnalysisStats JSON of s to buf.
func (s *Stats) AppendJSON(buf []byte) []byte {
	buf = append(buf, `{"total":`...)
	buf = strconv.AppendInt(buf, s.Total, 10)
	buf = append(buf, `,"by_status":{`...)
	for i, st := range Statuses {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = AppendJSONString(buf, string(st))
		buf = append(buf, ':')
		buf = strconv.AppendInt(buf, s.ByStatus[st], 10)
	}
	buf = append(buf, `},"avg_score":`...)
	buf = appendFloatPtr(buf, s.AvgScore)
	buf = append(buf, `,"top_tags":[`...)
	for i, t := range s.TopTags {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, `{"tag":`...)
		buf = AppendJSONString(buf, t.Tag)
		buf = append(buf, `,"count":`...)
		buf = strconv.AppendInt(buf, t.Count, 10)
		buf = append(buf, '}')
	}
	buf = append(buf, `],"computed_at":`...)
	buf = AppendJSONTime(buf, s.ComputedAt)
	return append(buf, '}')
}

func appendStringPtr(buf []byte, s *string) []byte {
	if s == nil {
		return append(buf, "null"...)
	}
	return AppendJSONString(buf, *s)
}

func appendFloatPtr(buf []byte, f *float64) []byte {
	if f == nil {
		return append(buf, "null"...)
	}
	return AppendPydanticFloat(buf, *f)
}

const hexDigits = "0123456789abcdef"

// AppendUUID appends the lower-case hyphenated form of id without the
// allocation of id.String().
func AppendUUID(buf []byte, id uuid.UUID) []byte {
	for i, b := range id {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			buf = append(buf, '-')
		}
		buf = append(buf, hexDigits[b>>4], hexDigits[b&0xf])
	}
	return buf
}

// AppendJSONString appends s as a JSON string the way Python's json.dumps
// with ensure_ascii=False does: only '"', '\\' and control characters below
// 0x20 are escaped; everything else, non-ASCII included, is written as is.
// Invalid UTF-8 is replaced by U+FFFD (it cannot come from a parsed body).
func AppendJSONString(buf []byte, s string) []byte {
	buf = append(buf, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				buf = append(buf, s[start:i]...)
				buf = append(buf, "\ufffd"...)
				i += size
				start = i
				continue
			}
			i += size
			continue
		}
		buf = append(buf, s[start:i]...)
		switch c {
		case '"':
			buf = append(buf, `\"`...)
		case '\\':
			buf = append(buf, `\\`...)
		case '\n':
			buf = append(buf, `\n`...)
		case '\r':
			buf = append(buf, `\r`...)
		case '\t':
			buf = append(buf, `\t`...)
		case '\b':
			buf = append(buf, `\b`...)
		case '\f':
			buf = append(buf, `\f`...)
		default:
			buf = append(buf, `\u00`...)
			buf = append(buf, hexDigits[c>>4], hexDigits[c&0xf])
		}
		i++
		start = i
	}
	buf = append(buf, s[start:]...)
	return append(buf, '"')
}

// AppendPythonFloat appends f as Python's repr(float) writes it (what
// json.dumps writes, so what a 422 echoes): the shortest round-tripping
// digits, fixed notation for 1e-4 <= |f| < 1e16 with at least one decimal
// ("1.0"), otherwise "1e-05" / "1.5e+16".
// NaN and infinities (which JSON cannot carry) are written as null.
func AppendPythonFloat(buf []byte, f float64) []byte {
	return appendFloat(buf, f, -4, true)
}

// AppendPydanticFloat appends f as pydantic-core writes a float in a
// response model: the shortest round-tripping digits, fixed notation for
// 1e-5 <= |f| < 1e16 ("0.00001", "1.0", "0.87"), otherwise an exponent
// without zero padding ("1e-7", "2.5e-6", "1e+16"). NaN and infinities
// are written as null.
func AppendPydanticFloat(buf []byte, f float64) []byte {
	return appendFloat(buf, f, -5, false)
}

// appendFloat writes f in fixed notation when minDecpt < decpt <= 16
// (decpt: the position of the decimal point relative to the shortest
// digits), otherwise in e-notation, its exponent padded to two digits when
// padExp is set.
func appendFloat(buf []byte, f float64, minDecpt int, padExp bool) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(buf, "null"...)
	}
	if f == 0 {
		if math.Signbit(f) {
			return append(buf, "-0.0"...)
		}
		return append(buf, "0.0"...)
	}
	// Shortest round-tripping digits in e-notation: d[.ddd]e±XX. Everything
	// stays on the stack: this runs for every score on every response.
	var tmp [32]byte
	e := strconv.AppendFloat(tmp[:0], math.Abs(f), 'e', -1, 64)
	var digitBuf [24]byte
	digits := digitBuf[:0]
	exp, i := 0, 0
	for ; i < len(e) && e[i] != 'e'; i++ {
		if e[i] != '.' {
			digits = append(digits, e[i])
		}
	}
	neg := i+1 < len(e) && e[i+1] == '-'
	for i += 2; i < len(e); i++ {
		exp = exp*10 + int(e[i]-'0')
	}
	if neg {
		exp = -exp
	}
	if f < 0 {
		buf = append(buf, '-')
	}
	decpt := exp + 1 // position of the decimal point relative to digits
	if decpt <= minDecpt || decpt > 16 {
		buf = append(buf, digits[0])
		if len(digits) > 1 {
			buf = append(buf, '.')
			buf = append(buf, digits[1:]...)
		}
		buf = append(buf, 'e')
		if exp < 0 {
			buf = append(buf, '-')
			exp = -exp
		} else {
			buf = append(buf, '+')
		}
		if exp < 10 && padExp {
			buf = append(buf, '0')
		}
		return strconv.AppendInt(buf, int64(exp), 10)
	}
	switch {
	case decpt <= 0:
		buf = append(buf, "0."...)
		for i := 0; i < -decpt; i++ {
			buf = append(buf, '0')
		}
		buf = append(buf, digits...)
	case decpt >= len(digits):
		buf = append(buf, digits...)
		for i := len(digits); i < decpt; i++ {
			buf = append(buf, '0')
		}
		buf = append(buf, ".0"...)
	default:
		buf = append(buf, digits[:decpt]...)
		buf = append(buf, '.')
		buf = append(buf, digits[decpt:]...)
	}
	return buf
}

// AppendJSONTime appends t as Pydantic v2 writes an aware UTC datetime:
// "2026-11-26T10:20:30.123456Z", the fraction left out when it is zero.
func AppendJSONTime(buf []byte, t time.Time) []byte {
	t = t.UTC()
	buf = append(buf, '"')
	if t.Nanosecond()/1000 == 0 {
		buf = t.AppendFormat(buf, "2006-01-02T15:04:05Z")
	} else {
		buf = t.AppendFormat(buf, "2006-01-02T15:04:05.000000Z")
	}
	return append(buf, '"')
}
