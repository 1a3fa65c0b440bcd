package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/analysis-cache/service/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }

// testAdminToken is the ADMIN_TOKEN of every server these tests start.
const testAdminToken = "test-admin-token-0123456789"

// testConfig returns the configuration of a server on the package's private
// database and key prefix, on a free port, with overrides applied.
func testConfig(t *testing.T, overrides map[string]string) Config {
	t.Helper()
	env := testenv.Get(t)
	vars := map[string]string{
		"PORT":         "0",
		"DATABASE_URL": env.DatabaseURL,
		"REDIS_URL":    env.RedisURL,
		"CACHE_PREFIX": env.RedisPrefix,
		"ADMIN_TOKEN":  testAdminToken,
		// The 50ms default would turn a slow reply on a loaded machine into a
		// BYPASS; tests of an unreachable Redis override it.
		"REDIS_TIMEOUT":              "30s",
		"WRITE_BEHIND_REDIS_TIMEOUT": "30s",
		"CACHE_ENCRYPTION_KEY":       "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
		"LOG_LEVEL":                  "warn",
	}
	for k, v := range overrides {
		vars[k] = v
	}
	cfg, err := LoadConfig(func(k string) string { return vars[k] })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// runUntilStopped starts m and returns its base URL and a stop function
// that shuts it down and waits for Run to return (spans are exported then).
func runUntilStopped(t *testing.T, m *Main) (base string, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	select {
	case <-m.Ready:
	case err := <-done:
		cancel()
		t.Fatalf("server did not start: %v", err)
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("server stopped with %v", err)
			}
		})
	}
	t.Cleanup(stop)
	_, port, _ := net.SplitHostPort(m.Addr)
	return "http://127.0.0.1:" + port, stop
}

// startServer runs Main in-process and returns its base URL; the server is
// shut down gracefully when the test ends.
func startServer(t *testing.T, overrides map[string]string) string {
	t.Helper()
	base, _ := runUntilStopped(t, NewMain(testConfig(t, overrides)))
	return base
}

// buildBinary builds cmd/api once per test run, for tests that need a real
// process they can kill -9.
func buildBinary(t *testing.T) string {
	t.Helper()
	return testenv.Binary(t, "github.com/analysis-cache/service/cmd/api")
}

// Process is a server started from the built binary.
type Process struct {
	Cmd  *exec.Cmd
	Base string
}

// startProcess starts the built binary with the package's test configuration
// plus overrides on a free port, and waits until /health answers.
func startProcess(t *testing.T, overrides map[string]string) *Process {
	t.Helper()
	bin := buildBinary(t)
	env := testenv.Get(t)
	port := testenv.FreePort(t)
	vars := map[string]string{
		"PORT": strconv.Itoa(port), "DATABASE_URL": env.DatabaseURL, "REDIS_URL": env.RedisURL,
		"CACHE_PREFIX": env.RedisPrefix, "ADMIN_TOKEN": testAdminToken, "LOG_LEVEL": "warn",
		"REDIS_TIMEOUT": "30s", "WRITE_BEHIND_REDIS_TIMEOUT": "30s", // see testConfig
		"CACHE_ENCRYPTION_KEY": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
	}
	for k, v := range overrides {
		vars[k] = v
	}
	cmd := exec.Command(bin)
	cmd.Env = os.Environ()
	for k, v := range vars {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &Process{Cmd: cmd, Base: "http://127.0.0.1:" + strconv.Itoa(port)}
	t.Cleanup(func() { p.Kill() })
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(p.Base + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("process on %s never became healthy: %v", p.Base, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Kill sends SIGKILL and reaps the process (no graceful shutdown).
func (p *Process) Kill() {
	if p.Cmd.ProcessState != nil {
		return
	}
	_ = p.Cmd.Process.Kill()
	_ = p.Cmd.Wait()
}

// Stop sends SIGTERM and waits for a graceful exit.
func (p *Process) Stop(t *testing.T) {
	t.Helper()
	if err := p.Cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if err := p.Cmd.Wait(); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatal(err)
		}
		t.Fatalf("process exited with %v", err)
	}
}

// syncBuffer is a bytes.Buffer safe for the server's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// The start-up line says what the process runs against, without
// credentials, and with PORT=0 the docs URL names the port it got; go-redis's
// own log lines come out through the same JSON logger.
func TestStartupLogAndRedisLogLines(t *testing.T) {
	env := testenv.Get(t)
	pg, err := url.Parse(env.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	pg.User = url.UserPassword(pg.User.Username(), "pg-secret-4711") // trust auth ignores it
	rd, err := url.Parse(env.RedisURL)
	if err != nil {
		t.Fatal(err)
	}
	rd.User = url.UserPassword("default", "redis-secret-4711") // the nopass default user accepts any
	m := NewMain(testConfig(t, map[string]string{
		"DATABASE_URL": pg.String(), "REDIS_URL": rd.String(), "LOG_LEVEL": "info", "LOG_FORMAT": "json",
	}))
	var logs syncBuffer
	m.Log = slog.New(slog.NewJSONHandler(&logs, nil))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server stopped with %v", err)
		}
	}()
	select {
	case <-m.Ready:
	case err := <-done:
		t.Fatalf("server did not start: %v", err)
	}

	var started map[string]any
	for _, line := range strings.Split(logs.String(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == "started" {
			if started != nil {
				t.Fatal("two start-up lines")
			}
			started = rec
		}
	}
	_, port, _ := net.SplitHostPort(m.Addr)
	want := map[string]any{
		"environment": "development", "postgres": "127.0.0.1:5432" + pg.Path,
		"redis": "redis://127.0.0.1:6379" + rd.Path, "cache_prefix": env.RedisPrefix, "tracing": false,
		"docs": "http://localhost:" + port + "/docs",
	}
	for k, v := range want {
		if started[k] != v {
			t.Errorf("start-up %s = %v, want %v (line %v)", k, started[k], v, started)
		}
	}
	if v, _ := started["version"].(string); v == "" || port == "0" {
		t.Errorf("version %q, port %q", v, port)
	}

	// A go-redis line: a Sentinel that does not answer.
	sentinel := redis.NewFailoverClient(&redis.FailoverOptions{
		MasterName: "mymaster", SentinelAddrs: []string{"127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))},
		MaxRetries: -1, DialerRetries: 1, DialTimeout: 30 * time.Second,
	})
	defer sentinel.Close()
	if err := sentinel.Ping(context.Background()).Err(); err == nil {
		t.Fatal("ping through a missing sentinel succeeded")
	}
	found := false
	for _, line := range strings.Split(logs.String(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && rec["source"] == "go-redis" && rec["level"] == "WARN" {
			msg, _ := rec["msg"].(string)
			found = found || strings.HasPrefix(msg, "sentinel: GetMasterAddrByName")
		}
	}
	if !found {
		t.Errorf("no go-redis line through slog:\n%s", logs.String())
	}
	if out := logs.String(); strings.Contains(out, "secret-4711") {
		t.Errorf("a credential reached the log:\n%s", out)
	}
}

// A Postgres that cannot be reached is reported under the variable that
// points at it, with host and database but no credentials.
func TestRunNamesDatabaseURL(t *testing.T) {
	port := strconv.Itoa(testenv.FreePort(t))
	m := NewMain(testConfig(t, map[string]string{
		"DATABASE_URL": "postgres://postgres:pg-secret-4711@127.0.0.1:" + port + "/nowhere?sslmode=disable&connect_timeout=30",
	}))
	m.Log = slog.New(slog.DiscardHandler)
	err := m.Run(context.Background())
	if err == nil || !strings.HasPrefix(err.Error(), "DATABASE_URL (127.0.0.1:"+port+"/nowhere): ") || strings.Contains(err.Error(), "secret") {
		t.Fatalf("got %v", err)
	}
}
