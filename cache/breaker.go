package cache

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sony/gobreaker/v2"
)

// Breaker tells a Redis outage from load, as a go-redis hook installed on
// every client of the process (AddHook) with its OnConnect. Its guarantees:
//
//   - An outage costs a request at most one command timeout: after
//     FailuresToOpen consecutive failures (timeouts, refused or broken
//     connections, LOADING while Redis restarts from its AOF) the circuit
//     opens, and every command fails at once with ErrCircuitOpen, without
//     touching the connection pool, until a probe succeeds. Callers answer
//     BYPASS from Postgres as for any Redis error.
//   - Load is not an outage: a request that waited longer than PoolTimeout
//     for a connection (redis.ErrPoolTimeout), a command its caller
//     abandoned, and Redis's answers (redis.Nil, NOSCRIPT, WRONGTYPE...)
//     neither count towards opening the circuit nor close the Gate.
//   - Recovery is one probe away: OpenFor after the circuit opened, the
//     next command is let through as a probe (others still fail fast);
//     its success closes the circuit. While it is open no command dials, so
//     go-redis's pool does not reach the PoolSize failed dials after which it
//     would stop dialling and probe only once a second.
//   - Every failure closes the Gate, and so does a Redis whose run_id this
//     process has not seen before on a new connection (a restart, maybe from
//     an AOF that lost the latest writes): that connection's first command
//     fails, and no read is served from Redis until the Log has caught up.
//
// The circuit is gobreaker's (sony/gobreaker/v2). A Breaker is safe for
// concurrent use.
type Breaker struct {
	cb   *gobreaker.CircuitBreaker[struct{}]
	gate *Gate
	log  *slog.Logger
	// healthy is true while the circuit is closed and the last command
	// succeeded: commands then skip the circuit's bookkeeping (two mutex
	// round trips each) until one fails.
	healthy atomic.Bool

	mu     sync.Mutex
	runIDs map[string]string // node ("" outside a cluster) → its last run_id
}

// ErrCircuitOpen is what a command returns while the circuit is open.
var ErrCircuitOpen = errors.New("redis unavailable (circuit open)")

// BreakerOptions configures a Breaker. Zero values take the defaults.
type BreakerOptions struct {
	FailuresToOpen uint32        // consecutive failures that open the circuit (3)
	OpenFor        time.Duration // before a probe is let through (50ms)
}

// NewBreaker returns a Breaker that closes gate on every outage.
func NewBreaker(gate *Gate, log *slog.Logger, opt BreakerOptions) *Breaker {
	if opt.FailuresToOpen == 0 {
		opt.FailuresToOpen = 3
	}
	if opt.OpenFor <= 0 {
		opt.OpenFor = 50 * time.Millisecond
	}
	if log == nil {
		log = slog.Default()
	}
	b := &Breaker{gate: gate, log: log, runIDs: map[string]string{}}
	b.cb = gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        "redis",
		MaxRequests: 1,
		Timeout:     opt.OpenFor,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= opt.FailuresToOpen },
		IsSuccessful: func(err error) bool {
			return !Outage(err)
		},
		IsExcluded: func(err error) bool {
			return errors.Is(err, redis.ErrPoolTimeout) || errors.Is(err, context.Canceled)
		},
		OnStateChange: func(_ string, from, to gobreaker.State) {
			b.log.Warn("redis circuit "+to.String(), "from", from.String())
		},
	})
	return b
}

// State returns the circuit's state: "closed", "open" or "half-open".
func (b *Breaker) State() string { return b.cb.State().String() }

// Outage reports whether err from a Redis command means Redis may not have
// seen or applied it: not an answer of Redis (except LOADING, MASTERDOWN,
// READONLY and TRYAGAIN, which a failover or restart answers), not a wait for
// a pooled connection, not a caller that went away.
func Outage(err error) bool {
	if err == nil || errors.Is(err, redis.Nil) || errors.Is(err, redis.ErrPoolTimeout) ||
		errors.Is(err, context.Canceled) || errors.Is(err, ErrCircuitOpen) {
		return false
	}
	var rerr redis.Error
	if errors.As(err, &rerr) {
		msg := rerr.Error()
		for _, p := range []string{"LOADING", "MASTERDOWN", "READONLY", "TRYAGAIN", "CLUSTERDOWN"} {
			if strings.HasPrefix(msg, p) {
				return true
			}
		}
		return false
	}
	return true
}

// skipBreaker marks the context of the commands OnConnect sends itself.
type skipBreaker struct{}

// DialHook implements redis.Hook: dials go through unchanged.
func (b *Breaker) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		return next(ctx, network, addr)
	}
}

// ProcessHook implements redis.Hook: one command through the circuit.
func (b *Breaker) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if ctx.Value(skipBreaker{}) != nil {
			return next(ctx, cmd)
		}
		return b.run(ctx, func() error { return next(ctx, cmd) }, func(err error) { cmd.SetErr(err) })
	}
}

// ProcessPipelineHook implements redis.Hook: a pipeline through the circuit.
func (b *Breaker) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		return b.run(ctx, func() error { return next(ctx, cmds) }, func(err error) {
			for _, c := range cmds {
				c.SetErr(err)
			}
		})
	}
}

func (b *Breaker) run(ctx context.Context, call func() error, refused func(error)) error {
	if b.healthy.Load() {
		err := call()
		if err != nil && ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			return err // the caller left: not Redis's failure
		}
		if !Outage(err) {
			return err
		}
		// The first failure after a run of successes: count it in the circuit.
		b.healthy.Store(false)
		_, _ = b.cb.Execute(func() (struct{}, error) { return struct{}{}, err })
		b.gate.Close()
		return err
	}
	_, err := b.cb.Execute(func() (struct{}, error) {
		err := call()
		if err != nil && ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			err = context.Canceled // the caller left: not Redis's failure
		}
		return struct{}{}, err
	})
	if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
		refused(ErrCircuitOpen)
		return ErrCircuitOpen
	}
	if Outage(err) {
		b.gate.Close()
	} else if b.cb.State() == gobreaker.StateClosed && b.cb.Counts().ConsecutiveFailures == 0 {
		b.healthy.Store(true)
	}
	return err
}

// OnConnect is the redis.Options OnConnect of a client of one server (or
// of a Sentinel-managed primary): see OnConnectTo.
func (b *Breaker) OnConnect(ctx context.Context, cn *redis.Conn) error {
	return b.onConnect(ctx, cn, "")
}

// OnConnectTo returns the OnConnect of the connections to one node of a
// Redis Cluster (its address), each node having a run_id of its own.
//
// Either reads the server's run_id. The first one seen at a node is only
// recorded (a new Gate replays the retained log at its first catch-up); a run_id that
// differs from the one seen before at that node means a restart (maybe
// from an AOF that lost the latest writes) or a failover: the gate closes
// with a replay request and this connection fails, so nothing is read
// through it before the Log has replayed the retained invalidations.
func (b *Breaker) OnConnectTo(node string) func(context.Context, *redis.Conn) error {
	return func(ctx context.Context, cn *redis.Conn) error { return b.onConnect(ctx, cn, node) }
}

func (b *Breaker) onConnect(ctx context.Context, cn *redis.Conn, node string) error {
	info, err := cn.Info(context.WithValue(ctx, skipBreaker{}, true), "server").Result()
	if err != nil {
		return err
	}
	id := infoField(info, "run_id")
	b.mu.Lock()
	prev, known := b.runIDs[node]
	b.runIDs[node] = id
	b.mu.Unlock()
	if !known || prev == id {
		// The first connection to this node: nothing to compare with (a
		// new Gate replays the retained log at its first catch-up anyway).
		return nil
	}
	b.gate.Restarted()
	b.log.Warn("redis restarted (new run_id): replaying the invalidation log before serving from it",
		"node", node, "run_id", id)
	return errRestarted
}

var errRestarted = errors.New("redis restarted; replaying the invalidation log first")

// infoField returns the value of "name:value" in an INFO reply.
func infoField(info, name string) string {
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(line, name+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
