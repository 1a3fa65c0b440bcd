package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

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

// startServer runs Main in-process and returns its base URL; the server is
// shut down gracefully when the test ends.
func startServer(t *testing.T, overrides map[string]string) string {
	t.Helper()
	m := NewMain(testConfig(t, overrides))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	select {
	case <-m.Ready:
	case err := <-done:
		cancel()
		t.Fatalf("server did not start: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server stopped with %v", err)
		}
	})
	_, port, _ := net.SplitHostPort(m.Addr)
	return "http://127.0.0.1:" + port
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// buildBinary builds cmd/api once per test run, for tests that need a real
// process they can kill -9.
func buildBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "api-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "api")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
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
