package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// apiClient talks to the service under test for setup and checks (the
// measured load comes from wrk).
type apiClient struct {
	base  string
	token string // ADMIN_TOKEN
	http  *http.Client
}

// response is a finished request: status, X-Cache, body and latency.
type response struct {
	status  int
	xcache  string
	body    []byte
	latency time.Duration
}

func (c *apiClient) do(ctx context.Context, method, path string, body []byte) (response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(body))
	if err != nil {
		return response{}, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	start := time.Now()
	resp, err := c.http.Do(req)
	if err != nil {
		return response{}, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, fmt.Errorf("%s %s: read body: %w", method, path, err)
	}
	return response{status: resp.StatusCode, xcache: resp.Header.Get("X-Cache"), body: b, latency: time.Since(start)}, nil
}

// expect does a request and fails unless it answers want; into, when not
// nil, receives the decoded JSON body.
func (c *apiClient) expect(ctx context.Context, method, path string, body []byte, want int, into any) (response, error) {
	r, err := c.do(ctx, method, path, body)
	if err != nil {
		return r, err
	}
	if r.status != want {
		return r, fmt.Errorf("%s %s: status %d, want %d: %.300s", method, path, r.status, want, r.body)
	}
	if into != nil {
		if err := json.Unmarshal(r.body, into); err != nil {
			return r, fmt.Errorf("%s %s: decode %.200s: %w", method, path, r.body, err)
		}
	}
	return r, nil
}

// cacheStats is the part of GET /api/v1/cache/stats the benchmark reads.
type cacheStats struct {
	WriteBehind struct {
		Pending int64 `json:"pending"`
	} `json:"write_behind"`
	Stampede struct {
		Computations int64 `json:"computations"`
		Coalesced    int64 `json:"coalesced"`
		LockTimeouts int64 `json:"lock_timeouts"`
	} `json:"stampede"`
}

func (c *apiClient) cacheStats(ctx context.Context) (cacheStats, error) {
	var s cacheStats
	_, err := c.expect(ctx, http.MethodGet, "/api/v1/cache/stats", nil, http.StatusOK, &s)
	return s, err
}

// invalidateKeys deletes logical keys through the admin API.
func (c *apiClient) invalidateKeys(ctx context.Context, keys ...string) error {
	body, _ := json.Marshal(map[string][]string{"keys": keys})
	_, err := c.expect(ctx, http.MethodPost, "/api/v1/cache/invalidate", body, http.StatusOK, nil)
	return err
}

// getAll GETs every path once with workers concurrent requests and fails
// on any answer but 200 (used to fill the cache before a hit scenario).
func (c *apiClient) getAll(ctx context.Context, paths []string, workers int) error {
	work := make(chan string)
	errs := make(chan error, workers)
	for range workers {
		go func() {
			var first error
			for p := range work {
				if first != nil {
					continue
				}
				if _, err := c.expect(ctx, http.MethodGet, p, nil, http.StatusOK, nil); err != nil {
					first = err
				}
			}
			errs <- first
		}()
	}
	for _, p := range paths {
		work <- p
	}
	close(work)
	var first error
	for range workers {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}
