package api

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/analysis-cache/service/domain"
)

// TestAdminCacheUnavailable: a Redis failure behind the admin endpoints
// (ECACHEUNAVAILABLE, however deeply wrapped) is a 503 "Cache unavailable"
// with Retry-After, not a logged 500, and the cause never reaches the client.
func TestAdminCacheUnavailable(t *testing.T) {
	auth := "Authorization: Bearer " + testToken
	for _, r := range []req{
		{method: "GET", path: "/api/v1/cache/stats", headers: []string{auth}},
		jsonReq("POST", "/api/v1/cache/invalidate", `{"keys":["analysis:1"]}`, auth),
		jsonReq("POST", "/api/v1/cache/invalidate", `{"pattern":"analysis-list:*"}`, auth),
		jsonReq("POST", "/api/v1/cache/invalidate", `{"tags":["analyses"]}`, auth),
		jsonReq("POST", "/api/v1/cache/invalidate", `{"namespace":"analyses"}`, auth),
	} {
		f, h, logs := newTestRouter(t)
		f.err = fmt.Errorf("admin: %w", domain.CacheUnavailable(errors.New("dial tcp 127.0.0.1:6379: secret-cause")))
		w := r.do(h)
		if w.Code != 503 || w.Body.String() != `{"detail":"Cache unavailable"}` || w.Header().Get("Retry-After") != retryAfter {
			t.Errorf("%s %s %s: %d %s Retry-After=%q", r.method, r.path, r.body, w.Code, w.Body, w.Header().Get("Retry-After"))
		}
		if strings.Contains(logs.String(), `"level":"ERROR"`) {
			t.Errorf("%s %s: a cache outage was logged as an internal error", r.method, r.path)
		}
	}
}

func TestClientGoneIsNotAnInternalError(t *testing.T) {
	f, h, logs := newTestRouter(t)
	f.err = fmt.Errorf("compute stats: %w", context.Canceled)
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the client hung up
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/api/v1/analyses/stats", nil).WithContext(ctx))
	if w.Code != statusClientClosedRequest || strings.Contains(logs.String(), "internal error") {
		t.Fatalf("status %d, log %q", w.Code, logs.String())
	}
}
