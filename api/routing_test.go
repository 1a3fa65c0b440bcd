package api

import (
	"net/http"
	"testing"
)

// TestStarletteRouting checks the fallback: 404, 405 with the Allow of the
// first declared route whose path matches, and 307 for trailing slashes.
func TestStarletteRouting(t *testing.T) {
	cases := []struct {
		name           string
		req            req
		status         int
		body           string
		allow, locaton string
	}{
		{"unknown path", req{method: "GET", path: "/nope"}, 404, `{"detail":"Not Found"}`, "", ""},
		{"unknown deeper path", req{method: "GET", path: "/api/v1/analyses/x/y"}, 404, `{"detail":"Not Found"}`, "", ""},
		{"PUT on the collection: first route is POST", req{method: "PUT", path: "/api/v1/analyses"}, 405, `{"detail":"Method Not Allowed"}`, "POST", ""},
		{"POST on an item: first route is GET", req{method: "POST", path: "/api/v1/analyses/" + owner}, 405, `{"detail":"Method Not Allowed"}`, "GET", ""},
		{"POST on stats: stats route first", req{method: "POST", path: "/api/v1/analyses/stats"}, 405, `{"detail":"Method Not Allowed"}`, "GET", ""},
		{"GET on bulk: {analysis_id} matches it", req{method: "GET", path: "/api/v1/analyses/bulk"}, 422, "", "", ""},
		{"HEAD is not implied", req{method: "HEAD", path: "/health"}, 405, `{"detail":"Method Not Allowed"}`, "GET", ""},
		{"GET on flush", req{method: "GET", path: "/api/v1/cache/write-behind/flush"}, 405, `{"detail":"Method Not Allowed"}`, "POST", ""},
		{"trailing slash", req{method: "GET", path: "/api/v1/analyses/?skip=1&tag=a%20b", headers: []string{"Host: api.example:8000"}},
			307, "", "", "http://api.example:8000/api/v1/analyses?skip=1&tag=a%20b"},
		{"several trailing slashes, any method", req{method: "DELETE", path: "/health///"}, 307, "", "", "http://example.com/health"},
		{"missing slash for a catch-all", req{method: "GET", path: "/static/redoc"}, 307, "", "", "http://example.com/static/redoc/"},
		{"redirect path is quoted like Python", req{method: "GET", path: "/api/v1/users/a%20b/analyses/"}, 307, "", "", "http://example.com/api/v1/users/a%20b/analyses"},
		{"root never redirects", req{method: "GET", path: "/"}, 404, `{"detail":"Not Found"}`, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, h, _ := newTestRouter(t)
			w := tc.req.do(h)
			if w.Code != tc.status {
				t.Fatalf("status = %d, want %d (body %s)", w.Code, tc.status, w.Body)
			}
			if tc.status == 422 {
				return
			}
			if got := w.Body.String(); got != tc.body {
				t.Errorf("body = %q, want %q", got, tc.body)
			}
			if got := w.Header().Get("Allow"); got != tc.allow {
				t.Errorf("Allow = %q, want %q", got, tc.allow)
			}
			if got := w.Header().Get("Location"); got != tc.locaton {
				t.Errorf("Location = %q, want %q", got, tc.locaton)
			}
		})
	}
}

// TestDocsRoutesAreServed: the four documentation pages answer GET and
// HEAD; any other method is a 405 with Allow: GET, HEAD.
func TestDocsRoutesAreServed(t *testing.T) {
	_, h, _ := newTestRouter(t)
	for _, p := range []string{"/openapi.json", "/docs", "/redoc", "/docs/oauth2-redirect"} {
		for _, m := range []string{"GET", "HEAD"} {
			if w := (req{method: m, path: p}).do(h); w.Code != http.StatusOK {
				t.Errorf("%s %s = %d", m, p, w.Code)
			}
		}
		for _, m := range []string{"POST", "PUT", "PATCH", "DELETE", "OPTIONS"} {
			w := req{method: m, path: p}.do(h)
			if w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != "GET, HEAD" || w.Body.String() != `{"detail":"Method Not Allowed"}` {
				t.Errorf("%s %s = %d Allow=%q %s", m, p, w.Code, w.Header().Get("Allow"), w.Body)
			}
		}
	}
}
