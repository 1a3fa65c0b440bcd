package api

import (
	"encoding/binary"
	"net/http"
	"strings"
	"testing"
	"unicode/utf16"
)

// createBody is a valid AnalysisCreate with one field's JSON replaced.
func createBody(field, value string) string {
	fields := []struct{ k, v string }{
		{"owner_id", `"` + owner + `"`}, {"url", `"https://e.com/x"`}, {"title", `"T"`},
		{"summary", `"s"`}, {"tags", `["a","b"]`}, {"notes", `"n"`},
	}
	parts := make([]string, 0, len(fields))
	for _, f := range fields {
		v := f.v
		if f.k == field {
			v = value
		}
		parts = append(parts, `"`+f.k+`":`+v)
	}
	return "{" + strings.Join(parts, ",") + "}"
}

func detail(errs ...string) string { return `{"detail":[` + strings.Join(errs, ",") + `]}` }

const nulErr = `"msg":"Value error, must not contain NUL characters","input":"a\u0000b","ctx":{"error":{}}}`

// TestNULIsRefusedAtTheDoor: U+0000 in any stored string of any write
// endpoint is a 422 value_error at that field, checked after the length and
// pattern rules, and nothing reaches a service (nothing stored or enqueued).
func TestNULIsRefusedAtTheDoor(t *testing.T) {
	const nul = `"a\u0000b"`
	path := "/api/v1/analyses/" + owner
	bulk := func(item string) string { return `{"items":[` + createBody("", "") + `,` + item + `]}` }
	cases := []struct {
		name string
		r    req
		want string
	}{
		{"create url", jsonReq("POST", "/api/v1/analyses", createBody("url", `"https://a\u0000b"`)),
			detail(`{"type":"value_error","loc":["body","url"],"msg":"Value error, must not contain NUL characters","input":"https://a\u0000b","ctx":{"error":{}}}`)},
		{"create title", jsonReq("POST", "/api/v1/analyses", createBody("title", nul)), detail(`{"type":"value_error","loc":["body","title"],` + nulErr)},
		{"create summary", jsonReq("POST", "/api/v1/analyses", createBody("summary", nul)), detail(`{"type":"value_error","loc":["body","summary"],` + nulErr)},
		{"create notes", jsonReq("POST", "/api/v1/analyses", createBody("notes", nul)), detail(`{"type":"value_error","loc":["body","notes"],` + nulErr)},
		{"create tag", jsonReq("POST", "/api/v1/analyses", createBody("tags", `["ok",`+nul+`]`)), detail(`{"type":"value_error","loc":["body","tags",1],` + nulErr)},
		{"patch title", jsonReq("PATCH", path, `{"title":`+nul+`}`), detail(`{"type":"value_error","loc":["body","title"],` + nulErr)},
		{"patch url", jsonReq("PATCH", path, `{"url":"http://a\u0000b"}`),
			detail(`{"type":"value_error","loc":["body","url"],"msg":"Value error, must not contain NUL characters","input":"http://a\u0000b","ctx":{"error":{}}}`)},
		{"patch summary", jsonReq("PATCH", path, `{"summary":`+nul+`}`), detail(`{"type":"value_error","loc":["body","summary"],` + nulErr)},
		{"patch notes", jsonReq("PATCH", path, `{"notes":`+nul+`}`), detail(`{"type":"value_error","loc":["body","notes"],` + nulErr)},
		{"patch tag", jsonReq("PATCH", path, `{"tags":[`+nul+`]}`), detail(`{"type":"value_error","loc":["body","tags",0],` + nulErr)},
		{"bulk title", jsonReq("POST", "/api/v1/analyses/bulk", bulk(createBody("title", nul))), detail(`{"type":"value_error","loc":["body","items",1,"title"],` + nulErr)},
		{"bulk url", jsonReq("POST", "/api/v1/analyses/bulk", bulk(createBody("url", `"https://a\u0000b"`))),
			detail(`{"type":"value_error","loc":["body","items",1,"url"],"msg":"Value error, must not contain NUL characters","input":"https://a\u0000b","ctx":{"error":{}}}`)},
		{"bulk summary", jsonReq("POST", "/api/v1/analyses/bulk", bulk(createBody("summary", nul))), detail(`{"type":"value_error","loc":["body","items",1,"summary"],` + nulErr)},
		{"bulk notes", jsonReq("POST", "/api/v1/analyses/bulk", bulk(createBody("notes", nul))), detail(`{"type":"value_error","loc":["body","items",1,"notes"],` + nulErr)},
		{"bulk tag", jsonReq("POST", "/api/v1/analyses/bulk", bulk(createBody("tags", `["x","y",`+nul+`]`))), detail(`{"type":"value_error","loc":["body","items",1,"tags",2],` + nulErr)},
		// The AfterValidator runs only once the length and pattern rules passed.
		{"length first", jsonReq("POST", "/api/v1/analyses", createBody("title", `"\u0000`+strings.Repeat("x", 200)+`"`)),
			detail(`{"type":"string_too_long","loc":["body","title"],"msg":"String should have at most 200 characters","input":"\u0000` + strings.Repeat("x", 200) + `","ctx":{"max_length":200}}`)},
		{"pattern first", jsonReq("POST", "/api/v1/analyses", createBody("url", `"ftp://\u0000"`)),
			detail(`{"type":"string_pattern_mismatch","loc":["body","url"],"msg":"String should match pattern '^https?://\\S+$'","input":"ftp://\u0000","ctx":{"pattern":"^https?://\\S+$"}}`)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, h, _ := newTestRouter(t)
			w := tc.r.do(h)
			if w.Code != http.StatusUnprocessableEntity || w.Body.String() != tc.want {
				t.Errorf("got %d %s\nwant 422 %s", w.Code, w.Body, tc.want)
			}
			if f.calls != 0 || f.created != nil || f.ingested != nil {
				t.Errorf("a service was called: calls=%d", f.calls)
			}
		})
	}
	// Admin keys are not stored in Postgres: NUL is fine there.
	f, h, _ := newTestRouter(t)
	if w := jsonReq("POST", "/api/v1/cache/invalidate", `{"keys":["a\u0000b"]}`, "Authorization: Bearer "+testToken).do(h); w.Code != 200 || f.selector.Keys[0] != "a\x00b" {
		t.Errorf("invalidate key with NUL: %d %s", w.Code, w.Body)
	}
}

// TestLoneSurrogates: a lone surrogate, escaped or as CESU-8 bytes, decodes
// (as Python's json.loads with surrogatepass) and then fails the str field
// with string_unicode, echoed with U+FFFD per surrogate, on every write
// endpoint. Surrogate pairs written as escapes stay one character.
func TestLoneSurrogates(t *testing.T) {
	const cesu = "\xed\xa0\x80" // U+D800 as Python's utf-8 'surrogatepass' writes it
	uni := func(loc, input string) string {
		return `{"type":"string_unicode","loc":` + loc + `,"msg":"Input should be a valid string, unable to parse raw data as a unicode string","input":"` + input + `"}`
	}
	path := "/api/v1/analyses/" + owner
	admin := "Authorization: Bearer " + testToken
	cases := []struct {
		name string
		r    req
		want string
	}{
		{"create title escape", jsonReq("POST", "/api/v1/analyses", createBody("title", `"a\ud800b"`)), detail(uni(`["body","title"]`, "a\ufffdb"))},
		{"create title cesu-8", jsonReq("POST", "/api/v1/analyses", createBody("title", `"a`+cesu+`b"`)), detail(uni(`["body","title"]`, "a\ufffdb"))},
		{"two surrogates, two replacements", jsonReq("POST", "/api/v1/analyses", createBody("summary", `"\udc00\ud800"`)), detail(uni(`["body","summary"]`, "\ufffd\ufffd"))},
		{"a cesu-8 pair is two lone surrogates", jsonReq("POST", "/api/v1/analyses", createBody("notes", "\"\xed\xa0\xbd\xed\xb8\x80\"")), detail(uni(`["body","notes"]`, "\ufffd\ufffd"))},
		{"create url", jsonReq("POST", "/api/v1/analyses", createBody("url", `"https://\udfff"`)), detail(uni(`["body","url"]`, "https://\ufffd"))},
		{"create tag", jsonReq("POST", "/api/v1/analyses", createBody("tags", `["a","\ud800"]`)), detail(uni(`["body","tags",1]`, "\ufffd"))},
		{"patch title", jsonReq("PATCH", path, `{"title":"\ud800"}`), detail(uni(`["body","title"]`, "\ufffd"))},
		{"patch tag cesu-8", jsonReq("PATCH", path, `{"tags":["`+cesu+`"]}`), detail(uni(`["body","tags",0]`, "\ufffd"))},
		{"bulk item", jsonReq("POST", "/api/v1/analyses/bulk", `{"items":[`+createBody("title", `"\ud800"`)+`]}`), detail(uni(`["body","items",0,"title"]`, "\ufffd"))},
		{"invalidate key", jsonReq("POST", "/api/v1/cache/invalidate", `{"keys":["\ud800"]}`, admin), detail(uni(`["body","keys",0]`, "\ufffd"))},
		{"unicode error comes before length", jsonReq("POST", "/api/v1/analyses", createBody("title", `"`+strings.Repeat("x", 300)+`\ud800"`)),
			detail(uni(`["body","title"]`, strings.Repeat("x", 300)+"\ufffd"))},
		{"echoed inside a missing error's object", jsonReq("POST", "/api/v1/analyses", `{"k\ud800":"v`+cesu+`"}`),
			detail(`{"type":"missing","loc":["body","owner_id"],"msg":"Field required","input":{"k`+"\ufffd"+`":"v`+"\ufffd"+`"}}`,
				`{"type":"missing","loc":["body","url"],"msg":"Field required","input":{"k`+"\ufffd"+`":"v`+"\ufffd"+`"}}`,
				`{"type":"missing","loc":["body","title"],"msg":"Field required","input":{"k`+"\ufffd"+`":"v`+"\ufffd"+`"}}`)},
		{"character positions count a surrogate once", jsonReq("POST", "/api/v1/analyses", `["`+cesu+`" x]`),
			`{"detail":[{"type":"json_invalid","loc":["body",5],"msg":"JSON decode error","input":{},"ctx":{"error":"Expecting ',' delimiter"}}]}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, h, _ := newTestRouter(t)
			w := tc.r.do(h)
			if w.Code != http.StatusUnprocessableEntity || w.Body.String() != tc.want {
				t.Errorf("got %d %s\nwant 422 %s", w.Code, w.Body, tc.want)
			}
			if f.calls != 0 {
				t.Errorf("a service was called: calls=%d", f.calls)
			}
		})
	}
	f, h, _ := newTestRouter(t)
	if w := jsonReq("POST", "/api/v1/analyses", createBody("title", `"\ud83d\ude00"`)).do(h); w.Code != 201 || f.created.Title != "😀" {
		t.Errorf("an escaped surrogate pair is one character: %d %s", w.Code, w.Body)
	}
	// Overlong or truncated UTF-8 is still not surrogatepass: 400.
	for _, body := range []string{"\"\xed\xa0\"", "\"\xc0\xaf\"", "\"\xf4\x90\x80\x80\""} {
		if w := jsonReq("POST", "/api/v1/analyses", body).do(h); w.Code != 400 || w.Body.String() != `{"detail":"There was an error parsing the body"}` {
			t.Errorf("%q: %d %s", body, w.Code, w.Body)
		}
	}
}

// TestLimitsAreInclusive: each maximum is accepted at exactly the limit and
// refused one above it.
func TestLimitsAreInclusive(t *testing.T) {
	x := func(n int) string { return strings.Repeat("x", n) }
	tags := func(n int) string { return `["t"` + strings.Repeat(`,"t"`, n-1) + `]` }
	url := func(n int) string { return `"https://` + x(n-len("https://")) + `"` }
	items := func(n int) string {
		item := createBody("", "")
		return `{"items":[` + item + strings.Repeat(","+item, n-1) + `]}`
	}
	cases := []struct {
		name      string
		path      string
		field     string
		at, over  string
		wantError string // the type refused one over the limit
	}{
		{"title", "/api/v1/analyses", "title", `"` + x(200) + `"`, `"` + x(201) + `"`, `"type":"string_too_long","loc":["body","title"]`},
		{"url", "/api/v1/analyses", "url", url(2048), url(2049), `"type":"string_too_long","loc":["body","url"]`},
		{"tag", "/api/v1/analyses", "tags", `["` + x(50) + `"]`, `["` + x(51) + `"]`, `"type":"string_too_long","loc":["body","tags",0]`},
		{"tags", "/api/v1/analyses", "tags", tags(20), tags(21), `"type":"too_long","loc":["body","tags"]`},
		{"summary", "/api/v1/analyses", "summary", `"` + x(10000) + `"`, `"` + x(10001) + `"`, `"type":"string_too_long","loc":["body","summary"]`},
		{"notes", "/api/v1/analyses", "notes", `"` + x(2000) + `"`, `"` + x(2001) + `"`, `"type":"string_too_long","loc":["body","notes"]`},
		{"items", "/api/v1/analyses/bulk", "", items(1000), items(1001), `"type":"too_long","loc":["body","items"]`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body := func(v string) string {
				if tc.field == "" {
					return v
				}
				return createBody(tc.field, v)
			}
			_, h, _ := newTestRouter(t)
			w := jsonReq("POST", tc.path, body(tc.at)).do(h)
			if w.Code != http.StatusCreated && w.Code != http.StatusAccepted {
				t.Errorf("at the limit: %d %.300s", w.Code, w.Body)
			}
			w = jsonReq("POST", tc.path, body(tc.over)).do(h)
			if w.Code != 422 || !strings.HasPrefix(w.Body.String(), `{"detail":[{`+tc.wantError) {
				t.Errorf("over the limit: %d %.300s", w.Code, w.Body)
			}
		})
	}
	// The lower bounds too: 1 item and 1 character are enough.
	_, h, _ := newTestRouter(t)
	if w := jsonReq("POST", "/api/v1/analyses", createBody("title", `"x"`)).do(h); w.Code != 201 {
		t.Errorf("one-character title: %d %s", w.Code, w.Body)
	}
}

// TestNullBody: a JSON null body is a missing body on every body endpoint.
func TestNullBody(t *testing.T) {
	want := `{"detail":[{"type":"missing","loc":["body"],"msg":"Field required","input":null}]}`
	for _, r := range []req{
		jsonReq("POST", "/api/v1/analyses", "null"),
		jsonReq("PATCH", "/api/v1/analyses/"+owner, " null "),
		jsonReq("POST", "/api/v1/analyses/bulk", "null"),
		jsonReq("POST", "/api/v1/cache/invalidate", "null", "Authorization: Bearer "+testToken),
	} {
		f, h, _ := newTestRouter(t)
		if w := r.do(h); w.Code != 422 || w.Body.String() != want || f.calls != 0 {
			t.Errorf("%s %s: %d %s", r.method, r.path, w.Code, w.Body)
		}
	}
}

func encodeUTF16(s string, order binary.AppendByteOrder, bom bool) string {
	var b []byte
	if bom {
		b = order.AppendUint16(b, 0xfeff)
	}
	for _, u := range utf16.Encode([]rune(s)) {
		b = order.AppendUint16(b, u)
	}
	return string(b)
}

func encodeUTF32(s string, order binary.AppendByteOrder, bom bool) string {
	var b []byte
	if bom {
		b = order.AppendUint32(b, 0xfeff)
	}
	for _, r := range s {
		b = order.AppendUint32(b, uint32(r))
	}
	return string(b)
}

// TestBodyEncodings: bodies decode as json.loads(bytes) decodes them.
func TestBodyEncodings(t *testing.T) {
	valid := createBody("title", `"é😀"`)
	be, le := binary.BigEndian, binary.LittleEndian
	const parseError = `{"detail":"There was an error parsing the body"}`
	nested := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	cases := []struct {
		name   string
		body   string
		status int
		want   string // body, when it matters
	}{
		{"utf-8", valid, 201, ""},
		{"utf-8 with BOM", "\xef\xbb\xbf" + valid, 201, ""},
		{"utf-16-le", encodeUTF16(valid, le, false), 201, ""},
		{"utf-16-be", encodeUTF16(valid, be, false), 201, ""},
		{"utf-16 BOM le", encodeUTF16(valid, le, true), 201, ""},
		{"utf-16 BOM be", encodeUTF16(valid, be, true), 201, ""},
		{"utf-32-le", encodeUTF32(valid, le, false), 201, ""},
		{"utf-32-be", encodeUTF32(valid, be, false), 201, ""},
		{"utf-32 BOM le", encodeUTF32(valid, le, true), 201, ""},
		{"utf-32 BOM be", encodeUTF32(valid, be, true), 201, ""},
		{"two-byte utf-16-le", encodeUTF16("7", le, false), 422, ""},
		{"two-byte utf-16-be", encodeUTF16("7", be, false), 422, ""},
		{"utf-16 positions are characters", encodeUTF16(`{"é": x}`, le, false), 422,
			`{"detail":[{"type":"json_invalid","loc":["body",6],"msg":"JSON decode error","input":{},"ctx":{"error":"Expecting value"}}]}`},
		{"utf-16 lone surrogate", encodeUTF16(`{"title":"`, le, false) + "\x00\xd8" + encodeUTF16(`"}`, le, false), 422, ""},
		{"odd utf-16 length", encodeUTF16(valid, le, false) + "\x00", 400, parseError},
		{"utf-32 over U+10FFFF", "\x00\x00\x00[\x00\x11\x00\x00\x00\x00\x00]", 400, parseError},
		{"NUL first", "\x00" + valid, 400, parseError},
		{"NUL alone", "\x00", 400, parseError},
		{"NUL first, three bytes", "\x00{}", 400, parseError},
		{"nested 999 deep", nested(999), 422, ""},
		{"nested 1000 deep", nested(1000), 400, parseError},
		{"nested objects 1000 deep", strings.Repeat(`{"a":`, 1000) + "1" + strings.Repeat("}", 1000), 400, parseError},
		{"syntax error before the depth limit", "[}" + nested(1000), 422, ""},
		{"int over 4300 digits stops the parse", "[" + strings.Repeat("1", 4301) + ",}", 400, parseError},
		{"BOM twice", "\xef\xbb\xbf\xef\xbb\xbf{}", 422,
			`{"detail":[{"type":"json_invalid","loc":["body",0],"msg":"JSON decode error","input":{},"ctx":{"error":"Expecting value"}}]}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, h, _ := newTestRouter(t)
			w := jsonReq("POST", "/api/v1/analyses", tc.body).do(h)
			if w.Code != tc.status || (tc.want != "" && w.Body.String() != tc.want) {
				t.Fatalf("got %d %.300s, want %d %s", w.Code, w.Body, tc.status, tc.want)
			}
			if tc.status == 201 && f.created.Title != "é😀" {
				t.Errorf("title %q", f.created.Title)
			}
		})
	}
}

// TestQueryStrings: the raw query is read as Starlette's parse_qsl reads it.
func TestQueryStrings(t *testing.T) {
	intParsing := func(loc, input string) string {
		return detail(`{"type":"int_parsing","loc":["query","` + loc + `"],"msg":"Input should be a valid integer, unable to parse string as an integer","input":"` + input + `"}`)
	}
	digits := strings.Repeat("1", 4301)
	cases := []struct {
		name, query string
		status      int
		want        string // the 422 body
		tag         *string
		skip, limit int
	}{
		{"only & separates", "limit=5;skip=1", 422, intParsing("limit", "5;skip=1"), nil, 0, 0},
		{"a tag with ;", "tag=a;b&limit=3", 200, "", ptr("a;b"), 0, 3},
		{"+ is a space", "tag=a+b%2Bc", 200, "", ptr("a b+c"), 0, 20},
		{"invalid escape stays", "limit=%zz", 422, intParsing("limit", "%zz"), nil, 0, 0},
		{"truncated escape stays", "tag=a%2", 200, "", ptr("a%2"), 0, 20},
		{"last value wins", "limit=1&limit=2&skip=9&skip=4", 200, "", nil, 4, 2},
		{"escaped name", "%74ag=x&%6Cimit=7", 200, "", ptr("x"), 0, 7},
		{"name without =", "tag&limit=4", 200, "", ptr(""), 0, 4},
		{"empty pairs skipped", "&&tag=y&", 200, "", ptr("y"), 0, 20},
		{"bad UTF-8: one U+FFFD per maximal subpart", "tag=%FFa%C3%28%E2%82", 200, "", ptr("\ufffda\ufffd(\ufffd"), 0, 20},
		{"NUL reaches the repository", "tag=a%00b", 200, "", ptr("a\x00b"), 0, 20},
		{"5. is not an integer", "limit=5.", 422, intParsing("limit", "5."), nil, 0, 0},
		{"5.0 is", "limit=5.0", 200, "", nil, 0, 5},
		{"over 4300 characters", "skip=" + digits, 422,
			detail(`{"type":"int_parsing_size","loc":["query","skip"],"msg":"Unable to parse input string as an integer, exceeded maximum size","input":"` + digits + `"}`), nil, 0, 0},
		{"4300 digits parse", "skip=" + strings.Repeat("0", 4300), 200, "", nil, 0, 20},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, h, _ := newTestRouter(t)
			w := req{method: "GET", path: "/api/v1/analyses?" + tc.query}.do(h)
			if w.Code != tc.status || (tc.want != "" && w.Body.String() != tc.want) {
				t.Fatalf("got %d %.400s, want %d %.400s", w.Code, w.Body, tc.status, tc.want)
			}
			if tc.status != 200 {
				return
			}
			fl := f.filter
			if (fl.Tag == nil) != (tc.tag == nil) || (tc.tag != nil && *fl.Tag != *tc.tag) || fl.Skip != tc.skip || fl.Limit != tc.limit {
				t.Errorf("filter tag=%q skip=%d limit=%d", deref(fl.Tag), fl.Skip, fl.Limit)
			}
		})
	}
}

func ptr(s string) *string { return &s }

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

// TestScoreEdgeCases: "+nan" is NaN (so less_than_equal), and an int too
// large for a float is float_type, as Pydantic answers them.
func TestScoreEdgeCases(t *testing.T) {
	big := "1" + strings.Repeat("0", 399)
	cases := []struct{ score, want string }{
		{`"+nan"`, `{"type":"less_than_equal","loc":["body","score"],"msg":"Input should be less than or equal to 1","input":"+nan","ctx":{"le":1.0}}`},
		{`"-NaN"`, `{"type":"less_than_equal","loc":["body","score"],"msg":"Input should be less than or equal to 1","input":"-NaN","ctx":{"le":1.0}}`},
		{`"+-nan"`, `{"type":"float_parsing","loc":["body","score"],"msg":"Input should be a valid number, unable to parse string as a number","input":"+-nan"}`},
		{big, `{"type":"float_type","loc":["body","score"],"msg":"Input should be a valid number","input":` + big + `}`},
		{"-" + big, `{"type":"float_type","loc":["body","score"],"msg":"Input should be a valid number","input":-` + big + `}`},
		{"1" + strings.Repeat("0", 300), `{"type":"less_than_equal","loc":["body","score"],"msg":"Input should be less than or equal to 1","input":1` + strings.Repeat("0", 300) + `,"ctx":{"le":1.0}}`},
	}
	for _, tc := range cases {
		f, h, _ := newTestRouter(t)
		w := jsonReq("POST", "/api/v1/analyses", createBody("summary", `"s","score":`+tc.score)).do(h)
		if w.Code != 422 || w.Body.String() != detail(tc.want) || f.calls != 0 {
			t.Errorf("score %.20s: %d %s", tc.score, w.Code, w.Body)
		}
	}
}

// TestEmptyPathSegment: a path parameter never matches an empty segment.
func TestEmptyPathSegment(t *testing.T) {
	f, h, _ := newTestRouter(t)
	for _, r := range []req{
		{method: "GET", path: "/api/v1/users//analyses"},
		{method: "DELETE", path: "/api/v1/analyses/"},
	} {
		w := r.do(h)
		if w.Code == 307 {
			continue // the trailing-slash redirect, as Starlette
		}
		if w.Code != 404 || w.Body.String() != `{"detail":"Not Found"}` {
			t.Errorf("%s %s: %d %s", r.method, r.path, w.Code, w.Body)
		}
	}
	if f.calls != 0 {
		t.Errorf("a service was called")
	}
	// A path parameter is percent-decoded before validation.
	w := req{method: "GET", path: "/api/v1/analyses/%41bc"}.do(h)
	if w.Code != 422 || !strings.Contains(w.Body.String(), `"input":"Abc"`) {
		t.Errorf("decoded path parameter: %d %s", w.Code, w.Body)
	}
}
