// Package faults is the black-box judge of the cache's consistency under
// Redis faults: it builds cmd/api, runs two instances of it on one Postgres
// database and a private redis-server, drives them over HTTP while it
// pauses, kills and restarts that Redis (and one instance), and checks
// every answer against the writes acknowledged before it (history_test.go).
// It uses nothing of the service but its binary, its HTTP API, signals and
// Redis admin commands.
package faults

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/analysis-cache/service/internal/testenv"
)

func TestMain(m *testing.M) {
	os.Exit(testenv.Run(m))
}

const (
	adminToken = "fault-test-admin-token-0123456789"
	// encryptionKey is the CACHE_ENCRYPTION_KEY both instances share, so
	// each reads the entries the other wrote.
	encryptionKey = "ZmF1bHQtdGVzdC1rZXktMDEyMzQ1Njc4OWFiY2RlZiE="
	// patience bounds every wait for a process to come up: generous, for a
	// loaded machine.
	patience = 30 * time.Second
)

// buildBinary builds cmd/api once per package run.
func buildBinary(t *testing.T) string {
	t.Helper()
	return testenv.Binary(t, "github.com/analysis-cache/service/cmd/api")
}

// child is a process this test started and reaps: a redis-server or an
// instance of the service.
type child struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once the process has been reaped
}

func startChild(name string, args []string, env []string, logPath string) (*child, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open log %s: %w", logPath, err)
	}
	cmd := exec.Command(name, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	c := &child{cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		logFile.Close()
		close(c.done)
	}()
	return c, nil
}

// kill sends SIGKILL (which also ends a stopped process) and reaps it.
func (c *child) kill() {
	select {
	case <-c.done:
		return
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	<-c.done
}

func (c *child) signal(sig syscall.Signal) error { return c.cmd.Process.Signal(sig) }

// redisServer is a private redis-server with an append-only file in its
// own directory, on its own port, so it can be paused, killed and
// restarted without touching the shared Redis.
type redisServer struct {
	t       *testing.T
	port    int
	dataDir string
	logPath string
	admin   *redis.Client // a connection of the test's own

	mu   sync.Mutex
	proc *child
}

// startRedis starts the server and registers its end with t.Cleanup.
func startRedis(t *testing.T) *redisServer {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatalf("the fault-injection test needs redis-server on PATH: %v", err)
	}
	dir := t.TempDir()
	r := &redisServer{t: t, port: testenv.FreePort(t), dataDir: filepath.Join(dir, "data"), logPath: filepath.Join(dir, "redis.log")}
	r.admin = redis.NewClient(&redis.Options{Addr: r.addr(), PoolSize: 1, MaxRetries: -1,
		DialTimeout: time.Second, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second})
	t.Cleanup(func() {
		r.kill()
		_ = r.admin.Close()
		if t.Failed() {
			t.Logf("redis log (tail):\n%s", tail(r.logPath, 15))
		}
	})
	r.start()
	return r
}

func (r *redisServer) addr() string { return "127.0.0.1:" + strconv.Itoa(r.port) }

// url is the server as REDIS_URL.
func (r *redisServer) url() string { return "redis://" + r.addr() + "/0" }

// start runs redis-server on the data directory (loading its AOF, if any)
// and waits until it answers PING.
func (r *redisServer) start() {
	r.t.Helper()
	if err := os.MkdirAll(r.dataDir, 0o755); err != nil {
		r.t.Fatal(err)
	}
	p, err := startChild("redis-server", []string{
		"--port", strconv.Itoa(r.port), "--bind", "127.0.0.1", "--appendonly", "yes",
		"--appendfsync", "everysec", "--dir", r.dataDir, "--save", "",
	}, os.Environ(), r.logPath)
	if err != nil {
		r.t.Fatal(err)
	}
	r.mu.Lock()
	r.proc = p
	r.mu.Unlock()
	deadline := time.Now().Add(patience)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := r.admin.Ping(ctx).Err()
		cancel()
		if err == nil {
			return
		}
		select {
		case <-p.done:
			r.t.Fatalf("redis-server on %d exited: %s", r.port, tail(r.logPath, 10))
		default:
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("redis-server on %d never answered PING: %v", r.port, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill ends the server with SIGKILL (no shutdown, no final fsync).
func (r *redisServer) kill() {
	r.mu.Lock()
	p := r.proc
	r.mu.Unlock()
	if p != nil {
		p.kill()
	}
}

// pause stops the server with SIGSTOP: connections stay open, nothing answers.
func (r *redisServer) pause() { r.signal(syscall.SIGSTOP) }

// resume continues a paused server with SIGCONT.
func (r *redisServer) resume() { r.signal(syscall.SIGCONT) }

func (r *redisServer) signal(sig syscall.Signal) {
	r.t.Helper()
	r.mu.Lock()
	p := r.proc
	r.mu.Unlock()
	if err := p.signal(sig); err != nil {
		r.t.Fatalf("redis-server: %v: %v", sig, err)
	}
}

// wipe removes the data directory (the AOF): the next start is empty.
func (r *redisServer) wipe() {
	r.t.Helper()
	if err := os.RemoveAll(r.dataDir); err != nil {
		r.t.Fatal(err)
	}
}

// killClients closes every normal and pub/sub connection but the test's
// own admin connection, and returns how many it closed.
func (r *redisServer) killClients() int64 {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var n int64
	for _, typ := range []string{"normal", "pubsub"} {
		k, err := r.admin.Do(ctx, "CLIENT", "KILL", "TYPE", typ, "SKIPME", "yes").Int64()
		if err != nil {
			r.t.Fatalf("CLIENT KILL TYPE %s: %v", typ, err)
		}
		n += k
	}
	return n
}

// instance is one process of the service.
type instance struct {
	name    string
	base    string
	logPath string
	proc    *child
	client  *http.Client

	mu   sync.Mutex
	dead bool
}

// startInstance starts the built binary with env on a free port and waits
// until /health answers; t.Cleanup kills it.
func startInstance(t *testing.T, name string, vars map[string]string) *instance {
	t.Helper()
	bin := buildBinary(t)
	port := testenv.FreePort(t)
	env := os.Environ()
	vars["PORT"] = strconv.Itoa(port)
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	in := &instance{
		name: name, base: "http://127.0.0.1:" + strconv.Itoa(port),
		logPath: filepath.Join(t.TempDir(), name+".log"),
		client: &http.Client{
			Timeout:   patience,
			Transport: &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: time.Minute},
			// A redirect is an answer to judge, not to follow.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
	p, err := startChild(bin, nil, env, in.logPath)
	if err != nil {
		t.Fatal(err)
	}
	in.proc = p
	t.Cleanup(func() {
		in.kill()
		in.client.CloseIdleConnections()
		if t.Failed() {
			t.Logf("instance %s log (tail):\n%s", name, tail(in.logPath, 10))
		}
	})
	deadline := time.Now().Add(patience)
	for {
		resp, err := in.client.Get(in.base + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return in
			}
		}
		select {
		case <-p.done:
			t.Fatalf("instance %s exited: %s", name, tail(in.logPath, 20))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("instance %s on %s never became healthy: %v", name, in.base, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill marks the instance dead (no new requests go to it) and sends SIGKILL.
func (in *instance) kill() {
	in.mu.Lock()
	in.dead = true
	in.mu.Unlock()
	in.proc.kill()
}

func (in *instance) alive() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	return !in.dead
}

// tail returns the last n lines of the file at path.
func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	var lines []string
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 64<<10), 1<<20)
	for s.Scan() {
		lines = append(lines, s.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}
