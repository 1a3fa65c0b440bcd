package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The Lua scripts and the summary parser agree: a real wrk run against a
// server that answers HIT and MISS alternately reports both counts, and
// "seq" mode requests the paths of the file in order.
func TestWrkSummaryAndXCacheCounts(t *testing.T) {
	if _, err := exec.LookPath("wrk"); err != nil {
		t.Skip("wrk is not installed (apt-get install wrk)")
	}
	var n, bad atomic.Int64
	var prev atomic.Value
	next := map[string]string{"/p/a": "/p/b", "/p/b": "/p/c", "/p/c": "/p/a"}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := n.Add(1)
		// One connection and seq mode: each path is the one after the
		// previous in the file (wrk calls request() once before the run to
		// check it, so the run itself may start on any line).
		if p, ok := prev.Swap(r.URL.Path).(string); ok && next[p] != r.URL.Path {
			bad.Add(1)
		}
		if i%2 == 0 {
			w.Header().Set("X-Cache", "HIT")
		} else {
			w.Header().Set("X-Cache", "MISS")
		}
		w.Write([]byte("{}"))
	}))
	defer srv.Close()
	paths := filepath.Join(t.TempDir(), "paths.txt")
	if err := os.WriteFile(paths, []byte("/p/a\n/p/b\n/p/c\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// wrk loads bench/ relative to the repository root.
	t.Chdir("../..")
	r, err := runWrk(context.Background(), load{base: srv.URL, script: "get_counted.lua", args: []string{paths, "seq"}, conns: 1}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests == 0 || r.rate() <= 0 || r.Latency.P99 < r.Latency.P50 {
		t.Errorf("summary = %+v", r)
	}
	hit, miss := r.XCache["HIT"], r.XCache["MISS"]
	if hit == 0 || miss == 0 || hit+miss != r.Requests || !strings.Contains(xcacheNote(r), "HIT") {
		t.Errorf("X-Cache counts HIT %d MISS %d for %d requests", hit, miss, r.Requests)
	}
	if bad.Load() != 0 {
		t.Errorf("%d requests out of file order", bad.Load())
	}
}

// merge adds up the rounds and takes the median round's percentiles.
func TestMergeSumsRoundsAndTakesMedianPercentiles(t *testing.T) {
	round := func(req, p99 int64) wrkResult {
		var r wrkResult
		r.Requests, r.DurationUS, r.Errors.Status = req, 1_000_000, 1
		r.Latency.P50, r.Latency.P99, r.Latency.Max = p99/2, p99, p99*2
		r.XCache = map[string]int64{"HIT": req}
		return r
	}
	m := merge([]wrkResult{round(100, 9000), round(300, 1000), round(200, 3000)})
	if m.Requests != 600 || m.DurationUS != 3_000_000 || m.Errors.Status != 3 || m.XCache["HIT"] != 600 {
		t.Errorf("sums = %+v", m)
	}
	if m.Latency.P99 != 3000 || m.Latency.P50 != 1500 || m.Latency.Max != 18000 {
		t.Errorf("latency = %+v, want the median round's p50/p99 and the overall max", m.Latency)
	}
	if got := m.rate(); got != 199 {
		t.Errorf("rate = %v, want (600-3)/3 s = 199", got)
	}
}

// interleaveTurns calls onTurn(i) before each run of load i, warm-ups
// included: between two calls only load i's server gets requests.
func TestInterleaveTurnsAnnouncesEachRun(t *testing.T) {
	if _, err := exec.LookPath("wrk"); err != nil {
		t.Skip("wrk is not installed (apt-get install wrk)")
	}
	var counts [2]atomic.Int64
	var loads []load
	for i := range counts {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			counts[i].Add(1)
			w.Write([]byte("{}"))
		}))
		defer srv.Close()
		paths := filepath.Join(t.TempDir(), "paths.txt")
		if err := os.WriteFile(paths, []byte("/p\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		loads = append(loads, load{base: srv.URL, script: "get.lua", args: []string{paths}, conns: 1})
	}
	t.Chdir("../..")
	var turns []int
	var before [2]int64
	var wrong []string
	check := func() {
		// Since the last turn, only the announced load's server was hit.
		if len(turns) == 0 {
			return
		}
		cur := turns[len(turns)-1]
		for i := range counts {
			n := counts[i].Load()
			// A request of an earlier turn still in flight when wrk exited
			// may be counted once more on a loaded machine: one per
			// connection (conns is 1), never a whole turn's worth.
			if i != cur && n == before[i]+1 {
				before[i] = n
				continue
			}
			if grew := n > before[i]; grew != (i == cur) {
				wrong = append(wrong, fmt.Sprintf("turn %d of load %d: load %d went %d → %d", len(turns), cur, i, before[i], n))
			}
			before[i] = n
		}
	}
	p := plan{Warmup: time.Second, Duration: 2 * time.Second}
	rs, err := interleaveTurns(context.Background(), p, 2, func(i int) { check(); turns = append(turns, i) }, loads...)
	if err != nil {
		t.Fatal(err)
	}
	check()
	if want := []int{0, 1, 0, 1, 0, 1}; !slices.Equal(turns, want) {
		t.Errorf("turns = %v, want %v (one warm-up each, then 2 rounds)", turns, want)
	}
	for _, w := range wrong {
		t.Error(w)
	}
	for i, r := range rs {
		if r.Requests == 0 {
			t.Errorf("load %d: no requests measured", i)
		}
	}
}
