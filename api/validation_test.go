package api

import (
	"net/http"
	"strings"
	"testing"
)

const owner = "9f8e7d6c-5b4a-4c3d-8e2f-1a0b9c8d7e6f"

// TestValidationErrors checks each 422 byte for byte against what FastAPI
// (0.141, Pydantic 2.13) answers for the same request.
func TestValidationErrors(t *testing.T) {
	long := func(n int) string { return strings.Repeat("x", n) }
	tags21 := `["a"` + strings.Repeat(`,"a"`, 20) + `]`
	cases := []struct {
		name string
		req  req
		want string
	}{
		{"empty body", jsonReq("POST", "/api/v1/analyses", ""),
			`{"detail":[{"type":"missing","loc":["body"],"msg":"Field required","input":null}]}`},
		{"missing fields echo the object in request order", jsonReq("POST", "/api/v1/analyses", `{"zeta":1,"title":"t","alpha":[1.50,2]}`),
			`{"detail":[{"type":"missing","loc":["body","owner_id"],"msg":"Field required","input":{"zeta":1,"title":"t","alpha":[1.5,2]}},` +
				`{"type":"missing","loc":["body","url"],"msg":"Field required","input":{"zeta":1,"title":"t","alpha":[1.5,2]}}]}`},
		{"repeated key keeps first position and last value", jsonReq("POST", "/api/v1/analyses", `{"a":1,"b":2,"a":3,"owner_id":"`+owner+`","title":"t"}`),
			`{"detail":[{"type":"missing","loc":["body","url"],"msg":"Field required","input":{"a":3,"b":2,"owner_id":"` + owner + `","title":"t"}}]}`},
		{"every field rule, in model order", jsonReq("POST", "/api/v1/analyses",
			`{"notes":5,"tags":["ok","",7],"score":"abc","summary":null,"status":"done","title":"","url":"ftp://x","owner_id":"abc"}`),
			`{"detail":[` +
				`{"type":"uuid_parsing","loc":["body","owner_id"],"msg":"Input should be a valid UUID, invalid length: expected length 32 for simple format, found 3","input":"abc","ctx":{"error":"invalid length: expected length 32 for simple format, found 3"}},` +
				`{"type":"string_pattern_mismatch","loc":["body","url"],"msg":"String should match pattern '^https?://\\S+$'","input":"ftp://x","ctx":{"pattern":"^https?://\\S+$"}},` +
				`{"type":"string_too_short","loc":["body","title"],"msg":"String should have at least 1 character","input":"","ctx":{"min_length":1}},` +
				`{"type":"enum","loc":["body","status"],"msg":"Input should be 'pending', 'processing', 'completed' or 'failed'","input":"done","ctx":{"expected":"'pending', 'processing', 'completed' or 'failed'"}},` +
				`{"type":"float_parsing","loc":["body","score"],"msg":"Input should be a valid number, unable to parse string as a number","input":"abc"},` +
				`{"type":"string_too_short","loc":["body","tags",1],"msg":"String should have at least 1 character","input":"","ctx":{"min_length":1}},` +
				`{"type":"string_type","loc":["body","tags",2],"msg":"Input should be a valid string","input":7},` +
				`{"type":"string_type","loc":["body","notes"],"msg":"Input should be a valid string"` + `,"input":5}]}`},
		{"too long strings and list", jsonReq("POST", "/api/v1/analyses",
			`{"owner_id":123,"url":"http://a b","title":"`+long(201)+`","tags":`+tags21+`,"score":1.5,"summary":"`+long(10001)+`"}`),
			`{"detail":[` +
				`{"type":"uuid_type","loc":["body","owner_id"],"msg":"UUID input should be a string, bytes or UUID object","input":123},` +
				`{"type":"string_pattern_mismatch","loc":["body","url"],"msg":"String should match pattern '^https?://\\S+$'","input":"http://a b","ctx":{"pattern":"^https?://\\S+$"}},` +
				`{"type":"string_too_long","loc":["body","title"],"msg":"String should have at most 200 characters","input":"` + long(201) + `","ctx":{"max_length":200}},` +
				`{"type":"string_too_long","loc":["body","summary"],"msg":"String should have at most 10000 characters","input":"` + long(10001) + `","ctx":{"max_length":10000}},` +
				`{"type":"less_than_equal","loc":["body","score"],"msg":"Input should be less than or equal to 1","input":1.5,"ctx":{"le":1.0}},` +
				`{"type":"too_long","loc":["body","tags"],"msg":"List should have at most 20 items after validation, not 21","input":` + tags21 + `,"ctx":{"field_type":"List","max_length":20,"actual_length":21}}]}`},
		{"score below zero, list type, uuid character", jsonReq("POST", "/api/v1/analyses",
			`{"owner_id":"zzzzzzzz-5b4a-4c3d-8e2f-1a0b9c8d7e6f","url":"https://ok","title":"t","score":-0.5,"tags":"a"}`),
			`{"detail":[` +
				`{"type":"uuid_parsing","loc":["body","owner_id"],"msg":"Input should be a valid UUID, invalid character: found ` + "`z`" + ` at 1","input":"zzzzzzzz-5b4a-4c3d-8e2f-1a0b9c8d7e6f","ctx":{"error":"invalid character: found ` + "`z`" + ` at 1"}},` +
				`{"type":"greater_than_equal","loc":["body","score"],"msg":"Input should be greater than or equal to 0","input":-0.5,"ctx":{"ge":0.0}},` +
				`{"type":"list_type","loc":["body","tags"],"msg":"Input should be a valid list","input":"a"}]}`},
		{"score NaN fails le (pydantic-core checks le first)", jsonReq("POST", "/api/v1/analyses", `{"owner_id":"`+owner+`","url":"https://ok","title":"t","score":"nan"}`),
			`{"detail":[{"type":"less_than_equal","loc":["body","score"],"msg":"Input should be less than or equal to 1","input":"nan","ctx":{"le":1.0}}]}`},
		{"score of a list is float_type", jsonReq("POST", "/api/v1/analyses", `{"owner_id":"`+owner+`","url":"https://ok","title":"t","score":[1]}`),
			`{"detail":[{"type":"float_type","loc":["body","score"],"msg":"Input should be a valid number","input":[1]}]}`},
		{"body not an object", jsonReq("POST", "/api/v1/analyses", `[1,2]`),
			`{"detail":[{"type":"model_attributes_type","loc":["body"],"msg":"Input should be a valid dictionary or object to extract fields from","input":[1,2]}]}`},
		{"no content type: raw text", req{method: "POST", path: "/api/v1/analyses", body: `{"a":1}`},
			`{"detail":[{"type":"model_attributes_type","loc":["body"],"msg":"Input should be a valid dictionary or object to extract fields from","input":"{\"a\":1}"}]}`},
		{"text/plain: raw text", req{method: "POST", path: "/api/v1/analyses", body: `{"a":1}`, headers: []string{"Content-Type: text/plain"}},
			`{"detail":[{"type":"model_attributes_type","loc":["body"],"msg":"Input should be a valid dictionary or object to extract fields from","input":"{\"a\":1}"}]}`},
		{"+json content type is parsed", req{method: "POST", path: "/api/v1/analyses", body: `[]`, headers: []string{"Content-Type: application/vnd.api+json; charset=utf-8"}},
			`{"detail":[{"type":"model_attributes_type","loc":["body"],"msg":"Input should be a valid dictionary or object to extract fields from","input":[]}]}`},
		{"malformed json", jsonReq("POST", "/api/v1/analyses", `{"title": "é", }`),
			`{"detail":[{"type":"json_invalid","loc":["body",13],"msg":"JSON decode error","input":{},"ctx":{"error":"Illegal trailing comma before end of object"}}]}`},
		{"malformed json wins over path errors", jsonReq("PATCH", "/api/v1/analyses/abc", `{"x"`),
			`{"detail":[{"type":"json_invalid","loc":["body",4],"msg":"JSON decode error","input":{},"ctx":{"error":"Expecting ':' delimiter"}}]}`},
		{"path before body", jsonReq("PATCH", "/api/v1/analyses/abc", `{"title":null,"status":null,"tags":null,"url":null,"summary":null,"score":null,"notes":null}`),
			`{"detail":[` +
				`{"type":"uuid_parsing","loc":["path","analysis_id"],"msg":"Input should be a valid UUID, invalid length: expected length 32 for simple format, found 3","input":"abc","ctx":{"error":"invalid length: expected length 32 for simple format, found 3"}},` +
				`{"type":"string_type","loc":["body","url"],"msg":"Input should be a valid string","input":null},` +
				`{"type":"string_type","loc":["body","title"],"msg":"Input should be a valid string","input":null},` +
				`{"type":"enum","loc":["body","status"],"msg":"Input should be 'pending', 'processing', 'completed' or 'failed'","input":null,"ctx":{"expected":"'pending', 'processing', 'completed' or 'failed'"}},` +
				`{"type":"list_type","loc":["body","tags"],"msg":"Input should be a valid list","input":null}]}`},
		{"patch: empty body is missing after path errors", jsonReq("PATCH", "/api/v1/analyses/abc", ""),
			`{"detail":[{"type":"uuid_parsing","loc":["path","analysis_id"],"msg":"Input should be a valid UUID, invalid length: expected length 32 for simple format, found 3","input":"abc","ctx":{"error":"invalid length: expected length 32 for simple format, found 3"}},` +
				`{"type":"missing","loc":["body"],"msg":"Field required","input":null}]}`},
		{"query errors in declaration order, inputs stay strings", req{method: "GET", path: "/api/v1/analyses?limit=101&skip=-1&status=x&owner_id=zz&tag=a"},
			`{"detail":[` +
				`{"type":"uuid_parsing","loc":["query","owner_id"],"msg":"Input should be a valid UUID, invalid character: found ` + "`z`" + ` at 1","input":"zz","ctx":{"error":"invalid character: found ` + "`z`" + ` at 1"}},` +
				`{"type":"enum","loc":["query","status"],"msg":"Input should be 'pending', 'processing', 'completed' or 'failed'","input":"x","ctx":{"expected":"'pending', 'processing', 'completed' or 'failed'"}},` +
				`{"type":"greater_than_equal","loc":["query","skip"],"msg":"Input should be greater than or equal to 0","input":"-1","ctx":{"ge":0}},` +
				`{"type":"less_than_equal","loc":["query","limit"],"msg":"Input should be less than or equal to 100","input":"101","ctx":{"le":100}}]}`},
		{"int parsing and ge 1", req{method: "GET", path: "/api/v1/analyses?skip=abc&limit=0"},
			`{"detail":[` +
				`{"type":"int_parsing","loc":["query","skip"],"msg":"Input should be a valid integer, unable to parse string as an integer","input":"abc"},` +
				`{"type":"greater_than_equal","loc":["query","limit"],"msg":"Input should be greater than or equal to 1","input":"0","ctx":{"ge":1}}]}`},
		{"user list: path then query", req{method: "GET", path: "/api/v1/users/" + owner + "0/analyses?limit=x"},
			`{"detail":[` +
				`{"type":"uuid_parsing","loc":["path","owner_id"],"msg":"Input should be a valid UUID, invalid group length in group 4: expected 12, found 13","input":"` + owner + `0","ctx":{"error":"invalid group length in group 4: expected 12, found 13"}},` +
				`{"type":"int_parsing","loc":["query","limit"],"msg":"Input should be a valid integer, unable to parse string as an integer","input":"x"}]}`},
		{"DELETE on stats hits {analysis_id}", req{method: "DELETE", path: "/api/v1/analyses/stats"},
			`{"detail":[{"type":"uuid_parsing","loc":["path","analysis_id"],"msg":"Input should be a valid UUID, invalid character: found ` + "`s`" + ` at 1","input":"stats","ctx":{"error":"invalid character: found ` + "`s`" + ` at 1"}}]}`},
		{"bulk: item locations", jsonReq("POST", "/api/v1/analyses/bulk", `{"items":[{"owner_id":"`+owner+`","url":"https://a","title":"t"},5,{"owner_id":"`+owner+`","url":"https://a","id":"12"}]}`),
			`{"detail":[` +
				`{"type":"model_attributes_type","loc":["body","items",1],"msg":"Input should be a valid dictionary or object to extract fields from","input":5},` +
				`{"type":"missing","loc":["body","items",2,"title"],"msg":"Field required","input":{"owner_id":"` + owner + `","url":"https://a","id":"12"}},` +
				// id comes last: AnalysisIngest subclasses AnalysisCreate.
				`{"type":"uuid_parsing","loc":["body","items",2,"id"],"msg":"Input should be a valid UUID, invalid length: expected length 32 for simple format, found 2","input":"12","ctx":{"error":"invalid length: expected length 32 for simple format, found 2"}}]}`},
		{"bulk: empty items", jsonReq("POST", "/api/v1/analyses/bulk", `{"items":[]}`),
			`{"detail":[{"type":"too_short","loc":["body","items"],"msg":"List should have at least 1 item after validation, not 0","input":[],"ctx":{"field_type":"List","min_length":1,"actual_length":0}}]}`},
		{"bulk: items missing", jsonReq("POST", "/api/v1/analyses/bulk", `{}`),
			`{"detail":[{"type":"missing","loc":["body","items"],"msg":"Field required","input":{}}]}`},
		{"invalidate: none", jsonReq("POST", "/api/v1/cache/invalidate", `{"keys":null}`, "Authorization: Bearer "+testToken),
			`{"detail":[{"type":"value_error","loc":["body"],"msg":"Value error, exactly one of keys, pattern, tags or namespace is required","input":{"keys":null},"ctx":{"error":{}}}]}`},
		{"invalidate: several", jsonReq("POST", "/api/v1/cache/invalidate", `{"pattern":"a*","namespace":"analyses"}`, "Authorization: Bearer "+testToken),
			`{"detail":[{"type":"value_error","loc":["body"],"msg":"Value error, exactly one of keys, pattern, tags or namespace is required","input":{"pattern":"a*","namespace":"analyses"},"ctx":{"error":{}}}]}`},
		{"invalidate: field errors before the model rule", jsonReq("POST", "/api/v1/cache/invalidate", `{"keys":[1],"pattern":2}`, "Authorization: Bearer "+testToken),
			`{"detail":[{"type":"string_type","loc":["body","keys",0],"msg":"Input should be a valid string","input":1},{"type":"string_type","loc":["body","pattern"],"msg":"Input should be a valid string","input":2}]}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, h, _ := newTestRouter(t)
			w := tc.req.do(h)
			if w.Code != http.StatusUnprocessableEntity {
				t.Fatalf("status = %d, want 422; body %s", w.Code, w.Body)
			}
			if got := w.Body.String(); got != tc.want {
				t.Errorf("body\n got %s\nwant %s", got, tc.want)
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			if f.calls != 0 {
				t.Errorf("a service was called on invalid input")
			}
		})
	}
}
