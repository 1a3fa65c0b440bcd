package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// profileCachedGet profiles the server during the cached-GET load.
func (b *bench) profileCachedGet(ctx context.Context, l load) error {
	return b.profile(ctx, "cached GET", "cpu-cached-get.prof", l)
}

// profile runs l once more while the server's net/http/pprof (PPROF_ADDR)
// records a CPU profile, and keeps the top of it in the report under
// scenario. The profile is kept in bin/bench/<file> for go tool pprof.
func (b *bench) profile(ctx context.Context, scenario, file string, l load) error {
	seconds := max(int(b.p.Duration.Seconds()), 1)
	url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", b.pprof, seconds)
	type fetched struct {
		body []byte
		err  error
	}
	done := make(chan fetched, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- fetched{err: err}
			return
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("status %d: %.200s", resp.StatusCode, body)
		}
		done <- fetched{body, err}
	}()
	// The profile starts when the request arrives; give it a moment.
	time.Sleep(100 * time.Millisecond)
	if _, err := runWrk(ctx, l, time.Duration(seconds)*time.Second); err != nil {
		return fmt.Errorf("profiled run: %w", err)
	}
	f := <-done
	if f.err != nil {
		slog.Warn("no CPU profile of the server (is PPROF_ADDR wired?)", "error", f.err)
		b.rep.Profiles = append(b.rep.Profiles, cpuProfile{Scenario: scenario, Top: "not available: " + f.err.Error()})
		return nil
	}
	if err := os.MkdirAll("bin/bench", 0o755); err != nil {
		return fmt.Errorf("profile dir: %w", err)
	}
	path := filepath.Join("bin", "bench", file)
	if err := os.WriteFile(path, f.body, 0o644); err != nil {
		return fmt.Errorf("write profile: %w", err)
	}
	top, err := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", "-nodecount=25", path).Output()
	if err != nil {
		return fmt.Errorf("go tool pprof -top %s: %w", path, err)
	}
	// Keep from "Showing nodes…": the lines before name the file and build.
	text := string(top)
	if i := strings.Index(text, "Showing nodes"); i >= 0 {
		text = text[i:]
	}
	b.rep.Profiles = append(b.rep.Profiles, cpuProfile{Scenario: scenario, Path: path, Top: strings.TrimSpace(text)})
	return nil
}
