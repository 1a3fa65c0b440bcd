package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
)

// call sends one request and returns the response with its body read.
func call(t *testing.T, method, url, body string, headers ...string) (*http.Response, []byte) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func expect(t *testing.T, resp *http.Response, body []byte, status int) {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("%s %s: status %d, want %d: %s", resp.Request.Method, resp.Request.URL, resp.StatusCode, status, body)
	}
}

type analysisJSON struct {
	ID      string   `json:"id"`
	OwnerID string   `json:"owner_id"`
	Title   string   `json:"title"`
	Status  string   `json:"status"`
	Score   *float64 `json:"score"`
	Tags    []string `json:"tags"`
	Notes   *string  `json:"notes"`
	Version int64    `json:"version"`
}

func createAnalysis(t *testing.T, base, owner, title string) analysisJSON {
	t.Helper()
	resp, body := call(t, "POST", base+"/api/v1/analyses",
		`{"owner_id":"`+owner+`","url":"https://example.com/a","title":"`+title+`","tags":["go","redis"],"notes":"secret note"}`)
	expect(t, resp, body, http.StatusCreated)
	var a analysisJSON
	if err := json.Unmarshal(body, &a); err != nil {
		t.Fatal(err)
	}
	if loc := resp.Header.Get("Location"); loc != "/api/v1/analyses/"+a.ID {
		t.Fatalf("Location %q", loc)
	}
	return a
}

// TestCRUDFlowThroughTheCache is the contract's CRUD flow against real
// Postgres and Redis: the second GET is a HIT, every write is visible to the
// next read at once, and a deleted analysis is gone.
func TestCRUDFlowThroughTheCache(t *testing.T) {
	base := startServer(t, nil)
	owner := uuid.NewString()
	a := createAnalysis(t, base, owner, "first")
	if a.Version != 1 || a.Status != "pending" || len(a.Tags) != 2 {
		t.Fatalf("created %+v", a)
	}

	url := base + "/api/v1/analyses/" + a.ID
	resp, first := call(t, "GET", url, "")
	expect(t, resp, first, 200)
	// Create is write-through: the first read is already served from Redis.
	if got := resp.Header.Get("X-Cache"); got != "HIT" {
		t.Fatalf("first GET after create: X-Cache %q, want HIT", got)
	}
	if resp.Header.Get("X-Cache-Pattern") != "cache-aside" || resp.Header.Get("ETag") != `"1"` {
		t.Fatalf("headers %v", resp.Header)
	}
	resp, second := call(t, "GET", url, "")
	expect(t, resp, second, 200)
	if resp.Header.Get("X-Cache") != "HIT" || !bytes.Equal(first, second) {
		t.Fatalf("second GET: %q %s", resp.Header.Get("X-Cache"), second)
	}
	resp, body := call(t, "GET", url, "", "If-None-Match", `"1"`)
	if resp.StatusCode != http.StatusNotModified || len(body) != 0 {
		t.Fatalf("If-None-Match: %d %q", resp.StatusCode, body)
	}

	resp, body = call(t, "PATCH", url, `{"title":"second","score":0.5}`, "If-Match", `"1"`)
	expect(t, resp, body, 200)
	if resp.Header.Get("ETag") != `"2"` {
		t.Fatalf("PATCH ETag %q", resp.Header.Get("ETag"))
	}
	resp, body = call(t, "GET", url, "")
	expect(t, resp, body, 200)
	var got analysisJSON
	_ = json.Unmarshal(body, &got)
	if got.Title != "second" || got.Version != 2 || got.Score == nil || *got.Score != 0.5 || got.Notes == nil || *got.Notes != "secret note" {
		t.Fatalf("read after PATCH: %s", body)
	}
	resp, body = call(t, "PATCH", url, `{"title":"stale"}`, "If-Match", `"1"`)
	if resp.StatusCode != http.StatusPreconditionFailed || string(body) != `{"detail":"Precondition Failed"}` {
		t.Fatalf("stale If-Match: %d %s", resp.StatusCode, body)
	}

	// Lists reflect the write at once (version and tag invalidation).
	for _, list := range []string{base + "/api/v1/analyses?owner_id=" + owner, base + "/api/v1/users/" + owner + "/analyses"} {
		_, _ = call(t, "GET", list, "") // fill the cache
		resp, body = call(t, "GET", list, "")
		expect(t, resp, body, 200)
		if !strings.Contains(string(body), `"title":"second"`) || !strings.Contains(string(body), `"count":1`) {
			t.Fatalf("%s: %s", list, body)
		}
	}

	resp, body = call(t, "DELETE", url, "")
	if resp.StatusCode != http.StatusNoContent || len(body) != 0 {
		t.Fatalf("DELETE: %d %q", resp.StatusCode, body)
	}
	resp, body = call(t, "GET", url, "")
	if resp.StatusCode != 404 || string(body) != `{"detail":"Analysis not found"}` {
		t.Fatalf("GET after DELETE: %d %s", resp.StatusCode, body)
	}
	for _, list := range []string{base + "/api/v1/analyses?owner_id=" + owner, base + "/api/v1/users/" + owner + "/analyses"} {
		resp, body = call(t, "GET", list, "")
		if resp.StatusCode != http.StatusOK || string(body) != `{"data":[],"count":0}` {
			t.Fatalf("%s after DELETE: %d %s", list, resp.StatusCode, body)
		}
	}
}

// TestRedisUnreachableServesFromPostgres points the cache at a closed port:
// every request still succeeds, reads say BYPASS.
func TestRedisUnreachableServesFromPostgres(t *testing.T) {
	base := startServer(t, map[string]string{"REDIS_URL": "redis://127.0.0.1:1/0", "REDIS_TIMEOUT": "20ms"})
	a := createAnalysis(t, base, uuid.NewString(), "no redis")
	resp, body := call(t, "GET", base+"/api/v1/analyses/"+a.ID, "")
	expect(t, resp, body, 200)
	if got := resp.Header.Get("X-Cache"); got != "BYPASS" {
		t.Fatalf("X-Cache %q, want BYPASS", got)
	}
	resp, body = call(t, "PATCH", base+"/api/v1/analyses/"+a.ID, `{"status":"completed"}`)
	expect(t, resp, body, 200)
	resp, body = call(t, "GET", base+"/api/v1/analyses?limit=5", "")
	expect(t, resp, body, 200)
	if resp.Header.Get("X-Cache") != "BYPASS" {
		t.Fatalf("list X-Cache %q", resp.Header.Get("X-Cache"))
	}
	resp, body = call(t, "GET", base+"/ready", "")
	if resp.StatusCode != 503 || !strings.Contains(string(body), `"postgres":"ok"`) || !strings.Contains(string(body), `"status":"unavailable"`) {
		t.Fatalf("ready: %d %s", resp.StatusCode, body)
	}
	resp, body = call(t, "POST", base+"/api/v1/analyses/bulk", `{"items":[{"owner_id":"`+uuid.NewString()+`","url":"https://x.io","title":"t"}]}`)
	if resp.StatusCode != 503 || string(body) != `{"detail":"Write-behind queue unavailable"}` || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("bulk without redis: %d %s %v", resp.StatusCode, body, resp.Header)
	}
}

// TestConcurrentPatchesNeverLeaveRedisBehind races many PATCHes of one
// analysis over HTTP; afterwards the cached entry is Postgres's version.
func TestConcurrentPatchesNeverLeaveRedisBehind(t *testing.T) {
	base := startServer(t, nil)
	a := createAnalysis(t, base, uuid.NewString(), "race")
	url := base + "/api/v1/analyses/" + a.ID
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, body := call(t, "PATCH", url, `{"title":"writer `+string(rune('a'+i))+`"}`)
			if resp.StatusCode != 200 {
				t.Errorf("PATCH: %d %s", resp.StatusCode, body)
			}
		}()
	}
	wg.Wait()
	resp, body := call(t, "GET", url, "")
	expect(t, resp, body, 200)
	var cached analysisJSON
	_ = json.Unmarshal(body, &cached)
	if resp.Header.Get("X-Cache") != "HIT" || cached.Version != 17 {
		t.Fatalf("after 16 PATCHes: X-Cache %s version %d, want HIT 17", resp.Header.Get("X-Cache"), cached.Version)
	}
}
