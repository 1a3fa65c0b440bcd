package cache

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/analysis-cache/service/internal/testenv"
)

// breakerClient is a client of addr with the Breaker hook installed and a
// dial counter.
func breakerClient(t *testing.T, addr string, gate *Gate, opt *redis.Options) (*redis.Client, *Breaker, *atomic.Int64) {
	t.Helper()
	b := NewBreaker(gate, slog.New(slog.DiscardHandler), BreakerOptions{FailuresToOpen: 3, OpenFor: 50 * time.Millisecond})
	dials := new(atomic.Int64)
	if opt == nil {
		opt = &redis.Options{}
	}
	opt.Addr = addr
	opt.MaxRetries = -1
	opt.DialerRetries = 1
	opt.OnConnect = b.OnConnect
	opt.Dialer = func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	rdb := redis.NewClient(opt)
	rdb.AddHook(b)
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb, b, dials
}

// openGate reopens g as a Log's catch-up would.
func openGate(t *testing.T, g *Gate) {
	t.Helper()
	e, _ := g.beginCatchUp()
	if !g.reopen(e) {
		t.Fatal("could not reopen the gate")
	}
}

// An outage opens the circuit after FailuresToOpen failures: commands then
// fail at once without dialling, the gate is closed, and the first command
// after Redis is back (a probe) closes the circuit again.
func TestBreakerOpensOnOutageAndRecovers(t *testing.T) {
	srv := startRedis(t)
	gate := &Gate{}
	rdb, b, dials := breakerClient(t, srv.addr, gate, &redis.Options{DialTimeout: time.Second, ReadTimeout: time.Second})
	ctx := context.Background()
	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	openGate(t, gate)
	srv.stop(t)
	for i := range 3 {
		if err := rdb.Get(ctx, "k").Err(); err == nil || errors.Is(err, ErrCircuitOpen) {
			t.Fatalf("command %d during the outage: %v, want Redis's error", i, err)
		}
	}
	if gate.Open() {
		t.Fatal("the gate is open after Redis failures")
	}
	if b.State() != "open" {
		t.Fatalf("circuit %s after 3 failures, want open", b.State())
	}
	before := dials.Load()
	if err := rdb.Get(ctx, "k").Err(); !errors.Is(err, ErrCircuitOpen) {
		t.Fatalf("with the circuit open: %v, want ErrCircuitOpen at once", err)
	}
	if dials.Load() != before {
		t.Fatal("a command dialled while the circuit was open")
	}
	srv.start(t)
	testenv.PollUntil(t, "a probe closed the circuit", func() bool {
		return rdb.Get(ctx, "k").Err() == redis.Nil && b.State() == "closed"
	})
}

// Waiting for a pooled connection is load, not an outage: however often a
// burst times out in the pool, the circuit stays closed and the gate open.
func TestBreakerPoolTimeoutIsNotAnOutage(t *testing.T) {
	srv := startRedis(t)
	gate := &Gate{}
	rdb, b, _ := breakerClient(t, srv.addr, gate, &redis.Options{PoolSize: 1, PoolTimeout: 20 * time.Millisecond, ReadTimeout: 10 * time.Second})
	ctx := context.Background()
	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	openGate(t, gate)
	held := make(chan struct{})
	go func() {
		defer close(held)
		_ = rdb.BLPop(ctx, 3*time.Second, "breaker-test-never").Err() // holds the only connection
	}()
	testenv.PollUntil(t, "the only connection is taken", func() bool { return rdb.PoolStats().IdleConns == 0 && rdb.PoolStats().TotalConns == 1 })
	for i := range 5 {
		if err := rdb.Get(ctx, "k").Err(); !errors.Is(err, redis.ErrPoolTimeout) {
			t.Fatalf("command %d with the pool exhausted: %v, want ErrPoolTimeout", i, err)
		}
	}
	if b.State() != "closed" || !gate.Open() {
		t.Fatalf("after pool timeouts: circuit %s, gate open %v; load must not count as an outage", b.State(), gate.Open())
	}
	<-held
}

// A Redis that restarted (a new run_id on a new connection) closes the gate
// with a replay request, and the connection that saw it serves nothing.
func TestBreakerRestartClosesGate(t *testing.T) {
	srv := startRedis(t)
	gate := &Gate{}
	rdb, _, _ := breakerClient(t, srv.addr, gate, &redis.Options{DialTimeout: time.Second, ReadTimeout: time.Second})
	ctx := context.Background()
	if err := rdb.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if !gate.Open() {
		t.Fatal("the process's first connection closed the gate: nothing to compare its run_id with")
	}
	srv.stop(t)
	srv.start(t) // same data set (saved), new run_id
	sawRestart := false
	testenv.PollUntil(t, "a command through a new connection", func() bool {
		err := rdb.Get(ctx, "k").Err()
		if errors.Is(err, errRestarted) {
			sawRestart = true
		}
		return err == nil
	})
	if !sawRestart {
		t.Fatal("no command failed on the restarted server's first connection")
	}
	if gate.Open() || !gate.restart.Load() {
		t.Fatalf("gate open %v, replay requested %v: want closed with a replay", gate.Open(), gate.restart.Load())
	}
}
