package cache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"golang.org/x/sync/singleflight"
)

// StampedeGuard protects one expensive computation (the stats aggregation)
// from a stampede of concurrent cold or expiring reads, across every process
// sharing the Redis. Its guarantees, layer by layer:
//
//  1. In-process coalescing: concurrent cold reads of one key in a process
//     share one flight (singleflight), so a process sends one lock attempt
//     and runs at most one computation for them, however many requests wait.
//  2. A distributed lock (SET lock:{key} <token> NX PX LockTTL, token = 128
//     random bits) admits one computation across processes. Only its owner
//     can release it (Lua compare-and-delete) or extend it (Lua
//     compare-and-pexpire, every LockTTL/3 while the computation runs). A
//     holder that cannot extend — the lock is another's, or no extension
//     succeeded for a whole LockTTL — abandons the computation (its context
//     is cancelled with errLockLost), so it never knowingly races the next
//     holder. A holder that dies leaves a lock that expires within LockTTL.
//  3. Waiters in other processes are woken by notification, not by polling:
//     the holder PUBLISHes on done:{key} after storing (or failing), and a
//     waiter SUBSCRIBEs, waits for the subscription to be confirmed, then
//     re-reads the value before blocking, so a value stored before the
//     subscription took effect is seen by that re-read (no lost wakeup).
//     A wait is bounded by the lock's remaining lease (a dead holder is
//     noticed when its lease lapses) and by WaitTimeout overall.
//  4. After acquiring the lock the holder reads the value again and does
//     not compute when another holder stored one in between.
//  5. XFetch: a reader of a fresh value starts a background recomputation
//     early with probability exp(−(expiry−now)/(δ·β)), δ being the last
//     computation's duration stored with the value (see xfetch), so the
//     value is usually renewed before anyone sees it stale.
//  6. Stale-while-revalidate: once a value exists it is answered at once —
//     HIT before its soft expiry, STALE after it, until the hard TTL
//     (soft TTL + StaleFor) removes it — while at most one refresh runs:
//     one per process (a refreshing set) and one across processes (the lock).
//  7. A waiter whose wait times out (LockTimeout counted) computes itself,
//     once, without the lock, and stores its result; a waiter whose holder
//     died takes the lock when the lease lapses. No reader ever waits or
//     fails while a value, fresh or stale, exists.
//
// Values only move forward: the store script keeps an entry whose
// computation started later than the one being stored. Redis failures are
// never swallowed (Metrics.Error) and degrade to computing directly, still
// coalesced in-process, answered BYPASS. Counters: Metrics.Computed per
// computation run, CoalescedOne per request served by another request's
// computation, LockTimeout per wait that timed out.
//
// A StampedeGuard is safe for concurrent use. Close stops its background refreshes.
type StampedeGuard struct {
	rdb     Client
	keys    Keys
	metrics *Metrics
	log     *slog.Logger
	opt     StampedeOptions

	flight singleflight.Group // cold fills of this process, by logical key

	base     context.Context // parent of background refreshes; cancelled by Close
	stopBase context.CancelFunc
	bg       sync.WaitGroup // background refreshes in progress

	mu         sync.Mutex      // guards refreshing and closed
	refreshing map[string]bool // logical keys with a background refresh in this process
	closed     bool

	hooks stampedeHooks
}

// StampedeOptions configures a StampedeGuard. Zero values take the defaults
// named on each field.
type StampedeOptions struct {
	// Resource labels the guard's metrics (resource="{Resource}"), e.g. "stats".
	Resource string
	// TTL is the soft lifetime of a value (STATS_TTL; default 60s): after it
	// readers get STALE and one refresh starts.
	TTL time.Duration
	// StaleFor is how long past TTL a value may still be served stale
	// (default TTL, so the hard TTL in Redis is 2 × TTL).
	StaleFor time.Duration
	// Jitter spreads TTL uniformly by ±Jitter (CACHE_TTL_JITTER, in [0, 1)).
	Jitter float64
	// Beta is XFetch's eagerness (default 1; larger recomputes earlier;
	// negative disables early recomputation).
	Beta float64
	// LockTTL is the lock's lease (default 5s), renewed every LockTTL/3
	// while the computation runs; a dead holder blocks others this long at most.
	LockTTL time.Duration
	// WaitTimeout bounds how long a cold reader waits for another process's
	// computation before computing itself (default 10s).
	WaitTimeout time.Duration
	// ComputeTimeout bounds a flight or a background refresh, which run
	// detached from the requests that started them (default 60s).
	ComputeTimeout time.Duration
	// Rand returns a uniform draw in [0, 1) and must be safe for concurrent
	// use (default math/rand/v2.Float64). It drives jitter and XFetch.
	Rand func() float64
	// Now is the clock of computed_at, δ, soft expiry and XFetch (default
	// time.Now). Waits and leases use real timers.
	Now func() time.Time
	// Tracer starts a "stampede compute" span around each computation
	// (default: a no-op tracer).
	Tracer trace.Tracer
}

func (o StampedeOptions) withDefaults() StampedeOptions {
	if o.TTL <= 0 {
		o.TTL = 60 * time.Second
	}
	if o.StaleFor <= 0 {
		o.StaleFor = o.TTL
	}
	if o.Jitter < 0 || o.Jitter >= 1 {
		o.Jitter = 0
	}
	if o.Beta == 0 {
		o.Beta = 1
	}
	if o.LockTTL <= 0 {
		o.LockTTL = 5 * time.Second
	}
	if o.WaitTimeout <= 0 {
		o.WaitTimeout = 10 * time.Second
	}
	if o.ComputeTimeout <= 0 {
		o.ComputeTimeout = 60 * time.Second
	}
	if o.Rand == nil {
		o.Rand = rand.Float64
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Tracer == nil {
		o.Tracer = noop.Tracer{}
	}
	return o
}

// Stampede is the value entry of a guarded computation: the logical key
// itself, e.g. "stats:analyses".
func (k Keys) Stampede(logical string) string { return k.Prefix + logical }

// StampedeDone is the pub/sub channel on which the holder of Lock(logical)
// announces that it stored (or gave up): "done:{key}". It is a channel, not
// a key, so it holds nothing and needs no TTL.
func (k Keys) StampedeDone(logical string) string { return k.Prefix + "done:" + logical }

// leaseSlack is added to a lock's remaining lease before a waiter looks
// again, covering PTTL's millisecond rounding.
const leaseSlack = 5 * time.Millisecond

// stampedeHooks are test seams that force interleavings; all nil in production.
type stampedeHooks struct {
	beforeAcquire   func() // a cold fill is about to SET NX the lock
	beforeSubscribe func() // a waiter is about to subscribe to done:{key}
	beforeWait      func() // a subscribed waiter is about to block
	beforeExtend    func() // the holder is about to extend its lease
	joinedFlight    func() // a request is attached to its process's flight
}

func callHook(h func()) {
	if h != nil {
		h()
	}
}

// NewStampedeGuard returns a guard on b storing values under b.Keys
// (Stampede, Lock, StampedeDone), counting into b.Metrics under the
// resource label opt.Resource and logging failed background refreshes to
// b.Logger.
func NewStampedeGuard(b Backend, opt StampedeOptions) *StampedeGuard {
	b = b.withDefaults()
	base, stop := context.WithCancel(context.Background())
	return &StampedeGuard{
		rdb: b.Redis, keys: b.Keys, metrics: b.Metrics, log: b.Logger, opt: opt.withDefaults(),
		base: base, stopBase: stop, refreshing: make(map[string]bool),
	}
}

// Close cancels the background refreshes and waits for them to end. Gets
// still work afterwards but start no refresh.
func (g *StampedeGuard) Close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
	g.stopBase()
	g.bg.Wait()
}

// Get returns the value of logicalKey, running compute only when no
// process has a usable value (see StampedeGuard). Status is HIT
// (fresh value, or stored by another process while this one waited), STALE
// (past its soft expiry; a refresh runs in the background), MISS (computed
// for this request or one it coalesced with) or BYPASS (Redis failed).
// It returns compute's error only when there is no value to serve. The
// Body may be shared with concurrent callers and must not be modified.
func (g *StampedeGuard) Get(ctx context.Context, logicalKey string, compute func(ctx context.Context) ([]byte, error)) (Result, error) {
	key := g.keys.Stampede(logicalKey)
	e, found, err := readComputed(ctx, g.rdb, key)
	if err != nil && ctx.Err() != nil {
		// This caller left: its failed read says nothing about Redis, and a
		// BYPASS flight started for it would be joined by live callers.
		return Result{}, fmt.Errorf("read %s: %w", key, context.Cause(ctx))
	}
	if err != nil {
		g.metrics.Error(ctx, g.opt.Resource, PatternStampede, "get", key, err)
		return g.coalesce(ctx, logicalKey, func(ctx context.Context) (fillResult, error) {
			return g.bypass(ctx, compute)
		})
	}
	if !found {
		return g.coalesce(ctx, logicalKey, func(ctx context.Context) (fillResult, error) {
			return g.fill(ctx, logicalKey, compute)
		})
	}
	status := Hit
	now := g.opt.Now()
	if !now.Before(e.SoftExpiry) {
		status = Stale
		g.refreshInBackground(logicalKey, e.ComputedAt, compute)
	} else if xfetch(now, e.SoftExpiry, e.Delta, g.opt.Beta, g.opt.Rand()) {
		g.refreshInBackground(logicalKey, e.ComputedAt, compute)
	}
	g.metrics.Lookup(g.opt.Resource, PatternStampede, status)
	return Result{Body: e.Body, Status: status, Pattern: PatternStampede}, nil
}

// fillResult is what a flight hands to every request that joined it.
type fillResult struct {
	res      Result
	computed bool  // the flight ran compute
	waited   bool  // the flight was served by another process's computation
	leader   *byte // identifies the request whose flight ran
}

// coalesce runs run once for all concurrent callers of logical in this
// process. The flight is detached from the caller that started it (one
// client hanging up must not fail the others) and bounded by
// ComputeTimeout; each caller still stops waiting when its own ctx ends.
func (g *StampedeGuard) coalesce(ctx context.Context, logical string, run func(context.Context) (fillResult, error)) (Result, error) {
	me := new(byte)
	ch := g.flight.DoChan(logical, func() (any, error) {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), g.opt.ComputeTimeout)
		defer cancel()
		out, err := run(fctx)
		out.leader = me
		return out, err
	})
	callHook(g.hooks.joinedFlight)
	var r singleflight.Result
	select {
	case <-ctx.Done():
		return Result{}, fmt.Errorf("wait for %s: %w", logical, context.Cause(ctx))
	case r = <-ch:
	}
	if r.Err != nil {
		return Result{}, r.Err
	}
	out := r.Val.(fillResult)
	if out.waited || (out.computed && out.leader != me) {
		g.metrics.CoalescedOne(g.opt.Resource)
	}
	g.metrics.Lookup(g.opt.Resource, PatternStampede, out.res.Status)
	return out.res, nil
}

// fill is the cold path of one process: take the lock and compute, or wait
// for the holder's notification and read what it stored.
func (g *StampedeGuard) fill(ctx context.Context, logical string, compute func(context.Context) ([]byte, error)) (fillResult, error) {
	key := g.keys.Stampede(logical)
	lock := g.lock(logical)
	deadline := time.Now().Add(g.opt.WaitTimeout)
	var sub *redis.PubSub
	defer func() {
		if sub != nil {
			_ = sub.Close()
		}
	}()
	for {
		callHook(g.hooks.beforeAcquire)
		acquiredAt := time.Now()
		token, err := lock.acquire(ctx)
		if err != nil {
			g.metrics.Error(ctx, g.opt.Resource, PatternStampede, "lock", lock.key, err)
			return g.bypass(ctx, compute)
		}
		if token != "" {
			return g.computeHolding(ctx, logical, lock, token, acquiredAt, compute, func(computedEntry) bool { return true })
		}
		if sub == nil {
			callHook(g.hooks.beforeSubscribe)
			if sub, err = g.subscribe(ctx, logical); err != nil {
				g.metrics.Error(ctx, g.opt.Resource, PatternStampede, "subscribe", g.keys.StampedeDone(logical), err)
				return g.bypass(ctx, compute)
			}
		}
		e, outcome, err := g.await(ctx, sub, key, lock, deadline)
		if err != nil {
			return g.bypass(ctx, compute) // counted by await
		}
		switch outcome {
		case valueStored:
			return fillResult{res: Result{Body: e.Body, Status: Hit, Pattern: PatternStampede}, waited: true}, nil
		case lockFree:
			continue // the holder failed or died: try to take the lock
		}
		break // waitTimedOut
	}
	g.metrics.LockTimeout(g.opt.Resource)
	g.log.LogAttrs(ctx, slog.LevelWarn, "stampede wait timed out; computing without the lock",
		slog.String("key", key), slog.Duration("wait_timeout", g.opt.WaitTimeout))
	body, computedAt, delta, err := g.run(ctx, compute)
	if err != nil {
		return fillResult{}, fmt.Errorf("compute %s: %w", logical, err)
	}
	g.store(ctx, key, computedAt, delta, body)
	return fillResult{res: Result{Body: body, Status: Miss, Pattern: PatternStampede}, computed: true}, nil
}

// waitOutcome is how a wait for another process's computation ended.
type waitOutcome int

const (
	valueStored  waitOutcome = iota // the value exists: serve it
	lockFree                        // no value and no holder: take the lock
	waitTimedOut                    // WaitTimeout passed with the holder still alive
)

// await reads the value, then blocks until the holder's notification or
// the end of its lease, and reads again after every wake-up. sub must be
// confirmed before the first read: a value stored before the subscription
// is then seen by that read, one stored after it is published to us. A
// Redis error is counted here and returned.
func (g *StampedeGuard) await(ctx context.Context, sub *redis.PubSub, key string, lock distLock, deadline time.Time) (computedEntry, waitOutcome, error) {
	for {
		e, found, err := readComputed(ctx, g.rdb, key)
		if err != nil {
			g.metrics.Error(ctx, g.opt.Resource, PatternStampede, "get", key, err)
			return computedEntry{}, 0, err
		}
		if found {
			return e, valueStored, nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			return computedEntry{}, waitTimedOut, nil
		}
		lease, err := lock.remaining(ctx)
		if err != nil {
			g.metrics.Error(ctx, g.opt.Resource, PatternStampede, "pttl", lock.key, err)
			return computedEntry{}, 0, err
		}
		if lease == 0 {
			return computedEntry{}, lockFree, nil
		}
		callHook(g.hooks.beforeWait)
		// Bounded by the lease: a holder that dies never publishes, but its
		// lock lapses, and the next look finds it free.
		if _, err := sub.ReceiveTimeout(ctx, min(left, lease+leaseSlack)); err != nil && !isTimeout(err) {
			g.metrics.Error(ctx, g.opt.Resource, PatternStampede, "receive", sub.String(), err)
			return computedEntry{}, 0, err
		}
	}
}

// computeHolding runs compute while holding the lock: double check with
// current, keep the lease alive, store, then release and notify the waiters
// (on failure too, so they stop waiting at once).
func (g *StampedeGuard) computeHolding(ctx context.Context, logical string, lock distLock, token string, acquiredAt time.Time,
	compute func(context.Context) ([]byte, error), current func(computedEntry) bool) (fillResult, error) {
	key := g.keys.Stampede(logical)
	defer g.releaseAndNotify(context.WithoutCancel(ctx), logical, lock, token)

	// Double check: another holder may have stored between our read and our SET NX.
	e, found, err := readComputed(ctx, g.rdb, key)
	if err != nil {
		g.metrics.Error(ctx, g.opt.Resource, PatternStampede, "get", key, err)
		return g.bypass(ctx, compute)
	}
	if found && current(e) {
		return fillResult{res: Result{Body: e.Body, Status: Hit, Pattern: PatternStampede}, waited: true}, nil
	}

	cctx, abandon := context.WithCancelCause(ctx)
	defer abandon(nil)
	stop := lock.keepAlive(cctx, token, acquiredAt, abandon)
	body, computedAt, delta, err := g.run(cctx, compute)
	stop()
	if err != nil {
		if cause := context.Cause(cctx); errors.Is(cause, errLockLost) {
			return fillResult{}, fmt.Errorf("compute %s: abandoned: %w: %w", logical, cause, err)
		}
		return fillResult{}, fmt.Errorf("compute %s: %w", logical, err)
	}
	g.store(ctx, key, computedAt, delta, body)
	return fillResult{res: Result{Body: body, Status: Miss, Pattern: PatternStampede}, computed: true}, nil
}

// run calls compute once, counts it, and measures δ on the guard's clock.
func (g *StampedeGuard) run(ctx context.Context, compute func(context.Context) ([]byte, error)) (body []byte, computedAt time.Time, delta time.Duration, err error) {
	ctx, span := g.opt.Tracer.Start(ctx, "stampede compute")
	defer span.End()
	computedAt = g.opt.Now()
	body, err = compute(ctx)
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
	}
	g.metrics.Computed(g.opt.Resource)
	return body, computedAt, g.opt.Now().Sub(computedAt), err
}

// store writes the value with a jittered soft expiry and a hard TTL of
// soft TTL + StaleFor. A failure is counted; the computed body is still served.
func (g *StampedeGuard) store(ctx context.Context, key string, computedAt time.Time, delta time.Duration, body []byte) {
	soft := g.opt.TTL
	if g.opt.Jitter > 0 {
		soft = spread(soft, g.opt.Jitter, g.opt.Rand())
	}
	e := computedEntry{ComputedAt: computedAt, Delta: delta, SoftExpiry: computedAt.Add(delta + soft), Body: body}
	hard := soft + g.opt.StaleFor
	if err := storeComputed.Run(ctx, g.rdb, []string{key}, e.encode(nil), hard.Milliseconds()).Err(); err != nil {
		g.metrics.Error(ctx, g.opt.Resource, PatternStampede, "store", key, err)
	}
}

// releaseAndNotify releases the lock if still ours, then wakes the waiters.
// Release first: a waiter woken by a failure can take the lock at once.
func (g *StampedeGuard) releaseAndNotify(ctx context.Context, logical string, lock distLock, token string) {
	if _, err := lock.release(ctx, token); err != nil {
		g.metrics.Error(ctx, g.opt.Resource, PatternStampede, "unlock", lock.key, err)
	}
	channel := g.keys.StampedeDone(logical)
	if err := g.rdb.Publish(ctx, channel, "done").Err(); err != nil {
		g.metrics.Error(ctx, g.opt.Resource, PatternStampede, "publish", channel, err)
	}
}

// bypass computes without Redis; the flight still coalesces this process.
func (g *StampedeGuard) bypass(ctx context.Context, compute func(context.Context) ([]byte, error)) (fillResult, error) {
	body, _, _, err := g.run(ctx, compute)
	if err != nil {
		return fillResult{}, fmt.Errorf("compute without cache: %w", err)
	}
	return fillResult{res: Result{Body: body, Status: Bypass, Pattern: PatternStampede}, computed: true}, nil
}

// refreshInBackground starts one refresh of logical in this process unless
// one is running (or the guard is closed). seen is the computed_at of the
// value the reader saw: the refresh is skipped if the value changed since.
func (g *StampedeGuard) refreshInBackground(logical string, seen time.Time, compute func(context.Context) ([]byte, error)) {
	g.mu.Lock()
	if g.closed || g.refreshing[logical] {
		g.mu.Unlock()
		return
	}
	g.refreshing[logical] = true
	g.bg.Add(1)
	g.mu.Unlock()

	go func() {
		defer g.bg.Done()
		defer func() {
			g.mu.Lock()
			delete(g.refreshing, logical)
			g.mu.Unlock()
		}()
		ctx, cancel := context.WithTimeout(g.base, g.opt.ComputeTimeout)
		defer cancel()
		if err := g.refresh(ctx, logical, seen, compute); err != nil {
			g.log.LogAttrs(ctx, slog.LevelWarn, "stampede refresh failed; the previous value is still served",
				slog.String("key", g.keys.Stampede(logical)), slog.Any("error", err))
		}
	}()
}

// refresh recomputes under the lock; when another process holds it, that
// process's refresh is the one, and this one ends at once.
func (g *StampedeGuard) refresh(ctx context.Context, logical string, seen time.Time, compute func(context.Context) ([]byte, error)) error {
	lock := g.lock(logical)
	acquiredAt := time.Now()
	token, err := lock.acquire(ctx)
	if err != nil {
		g.metrics.Error(ctx, g.opt.Resource, PatternStampede, "lock", lock.key, err)
		return nil // counted; readers keep the stale value
	}
	if token == "" {
		return nil
	}
	_, err = g.computeHolding(ctx, logical, lock, token, acquiredAt, compute, func(e computedEntry) bool {
		return !e.ComputedAt.Equal(seen) // someone refreshed since the reader looked
	})
	return err
}

// subscribe subscribes to the done channel of logical and waits for the
// confirmation: only from then on does a PUBLISH reach this waiter.
func (g *StampedeGuard) subscribe(ctx context.Context, logical string) (*redis.PubSub, error) {
	channel := g.keys.StampedeDone(logical)
	sub := g.rdb.Subscribe(ctx, channel)
	if _, err := sub.ReceiveTimeout(ctx, g.opt.WaitTimeout); err != nil {
		_ = sub.Close()
		return nil, fmt.Errorf("subscribe %s: %w", channel, err)
	}
	return sub, nil
}

func (g *StampedeGuard) lock(logical string) distLock {
	return distLock{
		rdb: g.rdb, key: g.keys.Lock(logical), ttl: g.opt.LockTTL,
		report: func(err error) {
			g.metrics.Error(context.Background(), g.opt.Resource, PatternStampede, "extend", g.keys.Lock(logical), err)
		},
		beforeExtend: g.hooks.beforeExtend,
	}
}

// isTimeout reports a read deadline reached: a bounded wait that ended.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
