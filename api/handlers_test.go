package api

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/analysis-cache/service/cache"
	"github.com/analysis-cache/service/domain"
)

var sampleBody = string(sampleAnalysis().AppendJSON(nil))

func TestCreateAnalysis(t *testing.T) {
	f, h, _ := newTestRouter(t)
	w := jsonReq("POST", "/api/v1/analyses", `{"owner_id":"`+strings.ToUpper(owner)+`","url":"https://e.com/x","title":"T","score":"0.5","tags":["a"],"notes":null,"extra":1}`).do(h)
	if w.Code != http.StatusCreated {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	if got := w.Header().Get("Location"); got != "/api/v1/analyses/"+fixedID.String() {
		t.Errorf("Location = %q", got)
	}
	want := `{"id":"` + fixedID.String() + `","owner_id":"` + owner + `","url":"https://e.com/x","title":"T","status":"pending","summary":null,"score":0.5,"tags":["a"],"notes":null,"version":1,"created_at":"2026-11-26T10:20:30.123456Z","updated_at":"2026-11-26T10:20:30.123456Z"}`
	if got := w.Body.String(); got != want {
		t.Errorf("body\n got %s\nwant %s", got, want)
	}
	if f.created.ID != uuid.Nil || f.created.OwnerID != fixedOwner {
		t.Errorf("service got %+v", f.created)
	}
}

// TestLaxScoreAndBool: score accepts bools, ints and numeric strings (lax
// mode). A refused input fails the case; it never dereferences what the
// service did not get.
func TestLaxScoreAndBool(t *testing.T) {
	cases := []struct {
		in   string
		want float64
	}{{`true`, 1}, {`false`, 0}, {`1`, 1}, {`" 0.25 "`, 0.25}, {`"1_0e-1"`, 1}}
	for _, tc := range cases {
		f, h, _ := newTestRouter(t)
		w := jsonReq("POST", "/api/v1/analyses", `{"owner_id":"`+owner+`","url":"https://e","title":"T","score":`+tc.in+`}`).do(h)
		switch {
		case w.Code != http.StatusCreated:
			t.Errorf("score %s: status %d %s", tc.in, w.Code, w.Body)
		case f.created == nil || f.created.Score == nil:
			t.Errorf("score %s: the service got no score", tc.in)
		case *f.created.Score != tc.want:
			t.Errorf("score %s: got %v, want %v", tc.in, *f.created.Score, tc.want)
		}
	}
}

func TestReadAnalysisCacheHeadersAndETag(t *testing.T) {
	f, h, _ := newTestRouter(t)
	f.getResult = cache.Result{Body: []byte(sampleBody), Version: 3, Status: cache.Hit, Pattern: cache.PatternAside}
	path := "/api/v1/analyses/" + fixedID.String()

	w := req{method: "GET", path: path}.do(h)
	if w.Code != 200 || w.Body.String() != sampleBody {
		t.Fatalf("status %d body %s", w.Code, w.Body)
	}
	for k, v := range map[string]string{"ETag": `"3"`, "X-Cache": "HIT", "X-Cache-Pattern": "cache-aside", "Content-Type": "application/json"} {
		if got := w.Header().Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	for _, inm := range []string{`"3"`, `W/"3"`, `"1", "3"`, `*`, `W/*`, ` "1" , W/"3" `} {
		w = req{method: "GET", path: path, headers: []string{"If-None-Match: " + inm}}.do(h)
		if w.Code != http.StatusNotModified || w.Body.Len() != 0 || w.Header().Get("ETag") != `"3"` {
			t.Errorf("If-None-Match %s: status %d, body %q", inm, w.Code, w.Body)
		}
	}
	for _, inm := range [][]string{{`"2"`}, {`3`}, {`"03"`}, {`"2"`, `"3"`}, {`W/"2", "4"`}} {
		r := req{method: "GET", path: path}
		for _, line := range inm {
			r.headers = append(r.headers, "If-None-Match: "+line)
		}
		if w = r.do(h); w.Code != 200 {
			t.Errorf("If-None-Match %q does not name \"3\": status %d", inm, w.Code)
		}
	}

	// A negative cache entry: 404 that still says where it came from.
	f.getResult, f.err = cache.Result{Status: cache.Hit, Pattern: cache.PatternAside}, domain.ErrAnalysisNotFound
	w = req{method: "GET", path: path}.do(h)
	if w.Code != 404 || w.Body.String() != `{"detail":"Analysis not found"}` || w.Header().Get("X-Cache") != "HIT" {
		t.Errorf("negative entry: %d %s %v", w.Code, w.Body, w.Header())
	}
	if w.Header().Get("ETag") != "" {
		t.Error("a 404 has no ETag")
	}
}

// TestIfMatch: If-Match (first line) is a list of strong entity tags; the
// service gets nil for "any version", the one version that can match, or
// 0 (no analysis has it) when none can, so it still looks the analysis up.
func TestIfMatch(t *testing.T) {
	path := "/api/v1/analyses/" + fixedID.String()
	v := func(n int64) *int64 { return &n }
	never := v(0)
	cases := []struct {
		headers []string
		want    *int64
	}{
		{nil, nil}, {[]string{`"7"`}, v(7)}, {[]string{`*`}, nil},
		{[]string{`7`}, never}, {[]string{`W/"7"`}, never}, {[]string{`"x"`}, never},
		{[]string{`""`}, never}, {[]string{`"07"`}, never}, {[]string{`"+7"`}, never}, {[]string{`"0"`}, never},
		{[]string{` "7" ,W/"8"`}, v(7)}, {[]string{`"7", *`}, nil},
		// Several versions: the current one (8, from the read) decides.
		{[]string{`"7", "8"`}, v(8)}, {[]string{`"8", "9"`}, v(8)}, {[]string{`"6", "7"`}, never},
		// Only the first header line counts.
		{[]string{`"7"`, `"8"`}, v(7)}, {[]string{`W/"7"`, `"7"`}, never},
	}
	for _, tc := range cases {
		for _, method := range []string{"PATCH", "DELETE"} {
			f, h, _ := newTestRouter(t)
			f.getResult = cache.Result{Version: 8}
			r := jsonReq(method, path, `{"title":"New"}`)
			for _, line := range tc.headers {
				r.headers = append(r.headers, "If-Match: "+line)
			}
			w := r.do(h)
			if w.Code != 200 && w.Code != 204 {
				t.Errorf("%s If-Match %q: %d %s", method, tc.headers, w.Code, w.Body)
				continue
			}
			if (f.ifMatch == nil) != (tc.want == nil) || (tc.want != nil && *f.ifMatch != *tc.want) {
				got := "nil"
				if f.ifMatch != nil {
					got = strconv.FormatInt(*f.ifMatch, 10)
				}
				t.Errorf("%s If-Match %q: service got %s", method, tc.headers, got)
			}
		}
	}
	// The analysis is looked up first: unknown is 404 whatever If-Match says.
	for _, im := range []string{`W/"1"`, `1`, `"1", "2"`} {
		for _, method := range []string{"PATCH", "DELETE"} {
			f, h, _ := newTestRouter(t)
			f.err = domain.ErrAnalysisNotFound
			w := jsonReq(method, path, `{"title":"New"}`, "If-Match: "+im).do(h)
			if w.Code != 404 || w.Body.String() != `{"detail":"Analysis not found"}` {
				t.Errorf("%s unknown id, If-Match %s: %d %s", method, im, w.Code, w.Body)
			}
		}
	}
}

func TestUpdateAndDelete(t *testing.T) {
	f, h, _ := newTestRouter(t)
	path := "/api/v1/analyses/" + fixedID.String()
	w := jsonReq("PATCH", path, `{"title":"New","summary":null,"score":0.75,"notes":"n","tags":["x","y"]}`).do(h)
	if w.Code != 200 || w.Header().Get("ETag") != `"4"` {
		t.Fatalf("PATCH: %d %v %s", w.Code, w.Header(), w.Body)
	}
	p := f.patch
	if p.Title == nil || *p.Title != "New" || p.URL != nil || p.Status != nil || !p.Summary.Set || p.Summary.Value != nil ||
		!p.Score.Set || *p.Score.Value != 0.75 || *p.Notes.Value != "n" || len(*p.Tags) != 2 {
		t.Errorf("patch = %+v", p)
	}
	if !strings.Contains(w.Body.String(), `"title":"New"`) || !strings.Contains(w.Body.String(), `"version":4`) {
		t.Errorf("PATCH body %s", w.Body)
	}

	w = req{method: "DELETE", path: path}.do(h)
	if w.Code != 204 || w.Body.Len() != 0 || f.deleted != fixedID {
		t.Errorf("DELETE: %d %q", w.Code, w.Body)
	}
	f.err = domain.ErrPrecondition
	if w = (req{method: "DELETE", path: path}).do(h); w.Code != 412 || w.Body.String() != `{"detail":"Precondition Failed"}` {
		t.Errorf("DELETE precondition: %d %s", w.Code, w.Body)
	}
}

// TestErrorTable checks the one code → status table.
func TestErrorTable(t *testing.T) {
	cases := []struct {
		err        error
		status     int
		body       string
		retryAfter string
	}{
		{domain.ErrAnalysisNotFound, 404, `{"detail":"Analysis not found"}`, ""},
		{domain.Errorf(domain.ECONFLICT, "Analysis %s already exists", "x"), 409, `{"detail":"Analysis x already exists"}`, ""},
		{domain.DatabaseUnavailable(errors.New("dial tcp: refused")), 503, `{"detail":"Database unavailable"}`, "5"},
		{domain.Errorf(domain.EQUEUEFULL, "full"), 503, `{"detail":"Write-behind queue is full"}`, "5"},
		{domain.Errorf(domain.EQUEUEUNAVAILABLE, "down"), 503, `{"detail":"Write-behind queue unavailable"}`, "5"},
		{domain.CacheUnavailable(errors.New("dial tcp 127.0.0.1:6379: refused")), 503, `{"detail":"Cache unavailable"}`, "5"},
		{errors.New("boom: secret detail"), 500, `Internal Server Error`, ""},
	}
	for _, tc := range cases {
		f, h, logs := newTestRouter(t)
		f.err = tc.err
		w := jsonReq("POST", "/api/v1/analyses/bulk", `{"items":[{"owner_id":"`+owner+`","url":"https://a","title":"t"}]}`).do(h)
		if w.Code != tc.status || w.Body.String() != tc.body || w.Header().Get("Retry-After") != tc.retryAfter {
			t.Errorf("%v: %d %q Retry-After=%q", tc.err, w.Code, w.Body, w.Header().Get("Retry-After"))
		}
		logged := strings.Contains(logs.String(), `"level":"ERROR"`)
		if logged != (tc.status == 500) {
			t.Errorf("%v: logged at error level = %v", tc.err, logged)
		}
		if tc.status == 500 && w.Header().Get("Content-Type") != "text/plain; charset=utf-8" {
			t.Errorf("500 Content-Type = %q", w.Header().Get("Content-Type"))
		}
	}
}

func TestBulkIngest(t *testing.T) {
	f, h, _ := newTestRouter(t)
	given := "67e55044-10b1-426f-9247-bb680e5fe0c8"
	w := jsonReq("POST", "/api/v1/analyses/bulk", `{"items":[{"owner_id":"`+owner+`","url":"https://a","title":"t"},{"id":"`+given+`","owner_id":"`+owner+`","url":"https://b","title":"u","status":"completed"}]}`).do(h)
	want := `{"accepted":2,"ids":["` + fixedID.String() + `","` + given + `"]}`
	if w.Code != 202 || w.Body.String() != want {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	if len(f.ingested) != 2 || f.ingested[1].Status != domain.StatusCompleted || f.ingested[0].Status != domain.StatusPending {
		t.Errorf("ingested %+v", f.ingested)
	}
}

func TestBulkTooManyItems(t *testing.T) {
	_, h, _ := newTestRouter(t)
	item := `{"owner_id":"` + owner + `","url":"https://a","title":"t"}`
	body := `{"items":[` + item + strings.Repeat(","+item, domain.MaxBulkItems) + `]}`
	w := jsonReq("POST", "/api/v1/analyses/bulk", body).do(h)
	if w.Code != 422 || !strings.HasPrefix(w.Body.String(), `{"detail":[{"type":"too_long","loc":["body","items"],"msg":"List should have at most 1000 items after validation, not 1001","input":[`) ||
		!strings.HasSuffix(w.Body.String(), `],"ctx":{"field_type":"List","max_length":1000,"actual_length":1001}}]}`) {
		t.Errorf("%d %.300s", w.Code, w.Body)
	}
}

func TestBodyLimitsAndEncoding(t *testing.T) {
	_, h, _ := newTestRouter(t)
	big := `{"title":"` + strings.Repeat("x", 64<<10) + `"}`
	cases := []struct {
		name   string
		r      req
		status int
		body   string
	}{
		{"over MAX_BODY_BYTES", jsonReq("POST", "/api/v1/analyses", big), 413, `{"detail":"Request body too large"}`},
		{"bulk has its own limit", jsonReq("POST", "/api/v1/analyses/bulk", big), 422, ""},
		{"not UTF-8", jsonReq("POST", "/api/v1/analyses", "{\"title\":\"\xff\"}"), 400, `{"detail":"There was an error parsing the body"}`},
		{"not UTF-8, no content type", req{method: "POST", path: "/api/v1/analyses", body: "\xff"}, 400, `{"detail":"There was an error parsing the body"}`},
		{"BOM is dropped as utf-8-sig does", jsonReq("POST", "/api/v1/analyses", "\xef\xbb\xbf[]"), 422,
			`{"detail":[{"type":"model_attributes_type","loc":["body"],"msg":"Input should be a valid dictionary or object to extract fields from","input":[]}]}`},
		{"echoing NaN is Starlette's 500", jsonReq("POST", "/api/v1/analyses", `{"owner_id":NaN}`), 500, "Internal Server Error"},
	}
	for _, tc := range cases {
		w := tc.r.do(h)
		if w.Code != tc.status || (tc.body != "" && w.Body.String() != tc.body) {
			t.Errorf("%s: %d %.200s", tc.name, w.Code, w.Body)
		}
	}
	// A chunked body has no Content-Length: the limited reader catches it.
	r := jsonReq("POST", "/api/v1/analyses", big)
	hr := httptestRequest(r)
	hr.ContentLength = -1
	if w := serveRequest(h, hr); w.Code != 413 {
		t.Errorf("chunked over limit: %d", w.Code)
	}
}

func TestAdminAuth(t *testing.T) {
	cases := []struct {
		name, auth, token string
		status            int
		body, www         string
	}{
		{"disabled", "Bearer x", "", 503, `{"detail":"Admin API is disabled"}`, ""},
		{"missing", "", testToken, 401, `{"detail":"Not authenticated"}`, "Bearer"},
		{"not bearer", "Basic dXNlcjpwYXNz", testToken, 401, `{"detail":"Not authenticated"}`, "Bearer"},
		{"bearer without token", "Bearer", testToken, 401, `{"detail":"Not authenticated"}`, "Bearer"},
		{"wrong token", "Bearer nope", testToken, 401, `{"detail":"Invalid authentication credentials"}`, "Bearer"},
		{"scheme is case-insensitive", "bearer " + testToken, testToken, 200, "", ""},
		{"credentials are stripped", "Bearer  " + testToken + " \t", testToken, 200, "", ""},
		{"only whitespace after the scheme", "Bearer  \t", testToken, 401, `{"detail":"Not authenticated"}`, "Bearer"},
		{"inner whitespace is kept", "Bearer " + testToken[:3] + " " + testToken[3:], testToken, 401, `{"detail":"Invalid authentication credentials"}`, "Bearer"},
	}
	for _, tc := range cases {
		for _, r := range []req{
			{method: "GET", path: "/api/v1/cache/stats"},
			{method: "POST", path: "/api/v1/cache/write-behind/flush"},
			// auth is checked before body validation
			jsonReq("POST", "/api/v1/cache/invalidate", `{"keys":["analysis:1"]}`),
		} {
			f, _, _ := newTestRouter(t)
			h := NewRouter(Deps{Analyses: f, Lists: f, Stats: statsService{f}, Ingest: f, Admin: adminService{f}, AdminToken: tc.token})
			if tc.auth != "" {
				r.headers = append(r.headers, "Authorization: "+tc.auth)
			}
			w := r.do(h)
			if w.Code != tc.status || (tc.body != "" && w.Body.String() != tc.body) || w.Header().Get("WWW-Authenticate") != tc.www {
				t.Errorf("%s %s %s: %d %s www=%q", tc.name, r.method, r.path, w.Code, w.Body, w.Header().Get("WWW-Authenticate"))
			}
			if tc.status != 200 && f.calls != 0 {
				t.Errorf("%s: service called without auth", tc.name)
			}
		}
	}
	// Auth comes before body validation, malformed JSON before auth.
	_, h, _ := newTestRouter(t)
	if w := jsonReq("POST", "/api/v1/cache/invalidate", `{}`).do(h); w.Code != 401 {
		t.Errorf("invalid body without auth: %d", w.Code)
	}
	if w := jsonReq("POST", "/api/v1/cache/invalidate", `{`).do(h); w.Code != 422 {
		t.Errorf("malformed body without auth: %d", w.Code)
	}
}

func TestAdminAnswers(t *testing.T) {
	f, h, _ := newTestRouter(t)
	auth := "Authorization: Bearer " + testToken
	w := req{method: "GET", path: "/api/v1/cache/stats", headers: []string{auth}}.do(h)
	want := `{"hits":3,"misses":1,"hit_ratio":0.75,"errors":2,"write_behind":{"pending":4,"flushed":5,"retried":6,"dead_lettered":7},"stampede":{"computations":8,"coalesced":9,"lock_timeouts":10}}`
	if w.Code != 200 || w.Body.String() != want {
		t.Errorf("stats: %d %s", w.Code, w.Body)
	}
	w = jsonReq("POST", "/api/v1/cache/invalidate", `{"pattern":"analysis:*","keys":null}`, auth).do(h)
	if w.Code != 200 || w.Body.String() != `{"invalidated":12}` || f.selector.Pattern == nil || *f.selector.Pattern != "analysis:*" || f.selector.Keys != nil {
		t.Errorf("invalidate: %d %s %+v", w.Code, w.Body, f.selector)
	}
	w = jsonReq("POST", "/api/v1/cache/invalidate", `{"keys":[]}`, auth).do(h)
	if w.Code != 200 || f.selector.Keys == nil {
		t.Errorf("empty keys is one selector: %d %+v", w.Code, f.selector)
	}
	w = req{method: "POST", path: "/api/v1/cache/write-behind/flush", headers: []string{auth}}.do(h)
	if w.Code != 200 || w.Body.String() != `{"flushed":7}` {
		t.Errorf("flush: %d %s", w.Code, w.Body)
	}
}

func TestListsPassFilters(t *testing.T) {
	f, h, _ := newTestRouter(t)
	f.getResult = cache.Result{Body: []byte(`{"data":[],"count":0}`), Status: cache.Miss, Pattern: cache.PatternNamespace}
	w := req{method: "GET", path: "/api/v1/analyses?owner_id=" + owner + "&status=failed&tag=&skip=1&skip=%205.0%20&limit=7"}.do(h)
	if w.Code != 200 || w.Body.String() != `{"data":[],"count":0}` || w.Header().Get("X-Cache") != "MISS" || w.Header().Get("X-Cache-Pattern") != "version" {
		t.Fatalf("%d %s %v", w.Code, w.Body, w.Header())
	}
	fl := f.filter
	if *fl.OwnerID != fixedOwner || *fl.Status != domain.StatusFailed || fl.Tag == nil || *fl.Tag != "" || fl.Skip != 5 || fl.Limit != 7 {
		t.Errorf("filter %+v", fl)
	}
	w = req{method: "GET", path: "/api/v1/analyses?tag=%FFa%C3%28"}.do(h)
	if fl = f.filter; w.Code != 200 || fl.Tag == nil || *fl.Tag != "\ufffda\ufffd(" {
		t.Errorf("a tag that is not UTF-8 is decoded with replacement as Starlette does: %d %+v", w.Code, fl.Tag)
	}
	w = req{method: "GET", path: "/api/v1/analyses"}.do(h)
	if fl = f.filter; w.Code != 200 || fl.OwnerID != nil || fl.Status != nil || fl.Tag != nil || fl.Skip != 0 || fl.Limit != 20 {
		t.Errorf("defaults %+v", fl)
	}
	w = req{method: "GET", path: "/api/v1/users/" + owner + "/analyses?limit=100"}.do(h)
	if w.Code != 200 || f.owner != fixedOwner || f.skip != 0 || f.lim != 100 {
		t.Errorf("user list: %d %v %d %d", w.Code, f.owner, f.skip, f.lim)
	}
	f.getResult = cache.Result{Body: []byte(`{"total":0}`), Status: cache.Stale, Pattern: cache.PatternStampede}
	w = req{method: "GET", path: "/api/v1/analyses/stats"}.do(h)
	if w.Code != 200 || w.Body.String() != `{"total":0}` || w.Header().Get("X-Cache") != "STALE" {
		t.Errorf("stats: %d %s", w.Code, w.Body)
	}
}

func TestOps(t *testing.T) {
	_, h, _ := newTestRouter(t)
	if w := (req{method: "GET", path: "/health"}).do(h); w.Code != 200 || w.Body.String() != `{"status":"ok"}` {
		t.Errorf("health: %d %s", w.Code, w.Body)
	}
	if w := (req{method: "GET", path: "/ready"}).do(h); w.Code != 200 || w.Body.String() != `{"status":"ok","checks":{"postgres":"ok","redis":"ok"}}` {
		t.Errorf("ready: %d %s", w.Code, w.Body)
	}
	down := NewRouter(Deps{Ready: func(ctxt contextT) map[string]string {
		return map[string]string{"redis": "dial tcp: connection refused", "postgres": "ok"}
	}})
	if w := (req{method: "GET", path: "/ready"}).do(down); w.Code != 503 ||
		w.Body.String() != `{"status":"unavailable","checks":{"postgres":"ok","redis":"dial tcp: connection refused"}}` {
		t.Errorf("ready down: %d %s", w.Code, w.Body)
	}
}

func TestRequestIDLogsAndMetrics(t *testing.T) {
	_, h, logs := newTestRouter(t)
	w := req{method: "GET", path: "/nope", headers: []string{"X-Request-ID: abc-123"}}.do(h)
	if got := w.Header().Get("X-Request-ID"); got != "abc-123" {
		t.Errorf("echoed id = %q", got)
	}
	if !strings.Contains(logs.String(), `"request_id":"abc-123","method":"GET","route":"unmatched","status":404`) {
		t.Errorf("access log: %s", logs)
	}
	w1 := req{method: "GET", path: "/health"}.do(h)
	w2 := req{method: "GET", path: "/health", headers: []string{"X-Request-ID: bad\nid"}}.do(h)
	id1, id2 := w1.Header().Get("X-Request-ID"), w2.Header().Get("X-Request-ID")
	if id1 == "" || id2 == "" || id1 == id2 || strings.Contains(id2, "bad") {
		t.Errorf("generated ids %q %q", id1, id2)
	}
	req{method: "GET", path: "/nope"}.do(h)
	m := req{method: "GET", path: "/metrics"}.do(h).Body.String()
	for _, want := range []string{
		`http_requests_total{method="GET",route="/health",status="200"} 2`,
		`http_requests_total{method="GET",route="unmatched",status="404"} 2`,
		`http_request_duration_seconds_count{method="GET",route="/health"} 2`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}
