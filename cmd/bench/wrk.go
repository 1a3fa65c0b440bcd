package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// wrkResult is the summary bench/common.lua prints after a wrk run.
type wrkResult struct {
	Requests   int64 `json:"requests"`
	DurationUS int64 `json:"duration_us"`
	Bytes      int64 `json:"bytes"`
	Errors     struct {
		Connect int64 `json:"connect"`
		Read    int64 `json:"read"`
		Write   int64 `json:"write"`
		Status  int64 `json:"status"` // answers with a status >= 400
		Timeout int64 `json:"timeout"`
	} `json:"errors"`
	Latency struct {
		P50  int64   `json:"p50"`
		P90  int64   `json:"p90"`
		P99  int64   `json:"p99"`
		Max  int64   `json:"max"`
		Mean float64 `json:"mean"`
	} `json:"latency_us"`
	XCache map[string]int64 `json:"xcache"`
}

// rate is completed requests per second; requests answered >= 400 are not
// counted as done work.
func (r wrkResult) rate() float64 {
	if r.DurationUS == 0 {
		return 0
	}
	return float64(r.Requests-r.Errors.Status) / (float64(r.DurationUS) / 1e6)
}

func (r wrkResult) p50() time.Duration { return time.Duration(r.Latency.P50) * time.Microsecond }
func (r wrkResult) p99() time.Duration { return time.Duration(r.Latency.P99) * time.Microsecond }

// failures describes the failed requests, empty when there were none.
func (r wrkResult) failures() string {
	e := r.Errors
	var parts []string
	for _, f := range []struct {
		n    int64
		what string
	}{{e.Status, "status>=400"}, {e.Timeout, "timeouts"}, {e.Connect, "connect errors"}, {e.Read, "read errors"}, {e.Write, "write errors"}} {
		if f.n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", f.n, f.what))
		}
	}
	return strings.Join(parts, ", ")
}

// load is one wrk invocation: a script and its arguments against base.
type load struct {
	base   string // http://127.0.0.1:port
	script string // file name in bench/
	args   []string
	conns  int
}

// runWrk runs l for d with one wrk thread pinned to CPU 1 (the server has CPU 0).
func runWrk(ctx context.Context, l load, d time.Duration) (wrkResult, error) {
	// wrk takes whole seconds (no "ms" unit).
	seconds := max(int64(d.Round(time.Second)/time.Second), 1)
	args := []string{"-t1", fmt.Sprintf("-c%d", l.conns), fmt.Sprintf("-d%ds", seconds),
		"--timeout", "10s", "-s", "bench/" + l.script, l.base}
	if len(l.args) > 0 {
		args = append(append(args, "--"), l.args...)
	}
	cmd := pinned(ctx, 1, "wrk", args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return wrkResult{}, fmt.Errorf("wrk %s: %w: %s", l.script, err, strings.TrimSpace(errOut.String()+" "+out.String()))
	}
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		if line, ok := strings.CutPrefix(sc.Text(), "BENCHJSON "); ok {
			var r wrkResult
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				return wrkResult{}, fmt.Errorf("parse wrk summary of %s: %w", l.script, err)
			}
			return r, nil
		}
	}
	return wrkResult{}, fmt.Errorf("wrk %s printed no summary: %s", l.script, out.String())
}

// warmAndRun runs warm (discarded) for the plan's warm-up, then run for
// the measured duration.
func warmAndRun(ctx context.Context, p plan, warm, run load) (wrkResult, error) {
	if _, err := runWrk(ctx, warm, p.Warmup); err != nil {
		return wrkResult{}, fmt.Errorf("warm-up: %w", err)
	}
	return runWrk(ctx, run, p.Duration)
}

// interleave runs loads in turn for rounds rounds of d/rounds each (after
// one warm-up of each), so that the machine's background noise falls on
// all of them alike: a figure and its ceiling are compared over the same
// stretch of time. Per load it sums requests, time, errors and X-Cache
// counts; p50 and p99 are the medians of the rounds' percentiles.
func interleave(ctx context.Context, p plan, rounds int, loads ...load) ([]wrkResult, error) {
	return interleaveTurns(ctx, p, rounds, nil, loads...)
}

// interleaveTurns is interleave calling onTurn(i) (when not nil) before
// each run of loads[i], warm-ups included.
func interleaveTurns(ctx context.Context, p plan, rounds int, onTurn func(int), loads ...load) ([]wrkResult, error) {
	turn := func(i int) {
		if onTurn != nil {
			onTurn(i)
		}
	}
	for i, l := range loads {
		turn(i)
		if _, err := runWrk(ctx, l, p.Warmup); err != nil {
			return nil, fmt.Errorf("warm-up %s: %w", l.base, err)
		}
	}
	per := make([][]wrkResult, len(loads))
	for range rounds {
		for i, l := range loads {
			turn(i)
			r, err := runWrk(ctx, l, p.Duration/time.Duration(rounds))
			if err != nil {
				return nil, err
			}
			per[i] = append(per[i], r)
		}
	}
	out := make([]wrkResult, len(loads))
	for i, rs := range per {
		out[i] = merge(rs)
	}
	return out, nil
}

// merge sums rounds of one load; latency percentiles become the medians
// of the rounds' percentiles (the histograms themselves stay in wrk).
func merge(rs []wrkResult) wrkResult {
	var m wrkResult
	m.XCache = map[string]int64{}
	var p50s, p99s []int64
	for _, r := range rs {
		m.Requests += r.Requests
		m.DurationUS += r.DurationUS
		m.Bytes += r.Bytes
		m.Errors.Connect += r.Errors.Connect
		m.Errors.Read += r.Errors.Read
		m.Errors.Write += r.Errors.Write
		m.Errors.Status += r.Errors.Status
		m.Errors.Timeout += r.Errors.Timeout
		m.Latency.Max = max(m.Latency.Max, r.Latency.Max)
		p50s, p99s = append(p50s, r.Latency.P50), append(p99s, r.Latency.P99)
		for k, n := range r.XCache {
			m.XCache[k] += n
		}
	}
	slices.Sort(p50s)
	slices.Sort(p99s)
	m.Latency.P50, m.Latency.P99 = p50s[len(p50s)/2], p99s[len(p99s)/2]
	return m
}
