package cache

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/analysis-cache/service/internal/testenv"
)

// A "process" in these tests is a StampedeGuard with its own Redis client
// (its own connections) and its own Metrics, as two servers would have.
type stampedeProcess struct {
	g   *StampedeGuard
	m   *Metrics
	rdb *redis.Client
}

func newStampedeProcess(t *testing.T, opt StampedeOptions, hooks stampedeHooks) stampedeProcess {
	t.Helper()
	env := testenv.Get(t)
	ropt, err := redis.ParseURL(env.RedisURL)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(ropt)
	m := NewMetrics(nil, nil)
	g := NewStampedeGuard(Backend{Redis: rdb, Keys: Keys{Prefix: env.RedisPrefix}, Metrics: m}, opt)
	g.hooks = hooks
	t.Cleanup(func() {
		g.Close()
		_ = rdb.Close()
	})
	return stampedeProcess{g: g, m: m, rdb: rdb}
}

var stampedeRuns atomic.Int64

// stampedeKey is a logical key of its own for each test run (-count=N
// reruns a test in the same package prefix).
func stampedeKey(t *testing.T) string {
	return fmt.Sprintf("stats:%s:%d", strings.ReplaceAll(t.Name(), "/", "_"), stampedeRuns.Add(1))
}

// waitFor fails the test when ch is not closed in time. The bound only turns
// a hang (the mechanism under test is missing) into a failure; it never
// measures speed.
func waitFor(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(60 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

// once returns a func that closes ch the first time it is called.
func closer(ch chan struct{}) func() {
	var o sync.Once
	return func() { o.Do(func() { close(ch) }) }
}

type getResult struct {
	res Result
	err error
}

func goGet(p stampedeProcess, key string, compute func(context.Context) ([]byte, error)) <-chan getResult {
	out := make(chan getResult, 1)
	go func() {
		res, err := p.g.Get(context.Background(), key, compute)
		out <- getResult{res, err}
	}()
	return out
}

func recv(t *testing.T, ch <-chan getResult, what string) getResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(60 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		return getResult{}
	}
}

// Many requests over two processes on a cold key: one computation. The
// holder's computation does not end until a request of the other process is
// blocked waiting, so the two processes provably overlap; without the
// distributed lock both compute (and nobody waits), and the count is 2.
func TestStampedeColdKeyTwoProcessesComputeOnce(t *testing.T) {
	key := stampedeKey(t)
	someoneWaits := make(chan struct{})
	hooks := stampedeHooks{beforeWait: closer(someoneWaits)}
	opt := StampedeOptions{TTL: time.Minute, LockTTL: time.Minute, WaitTimeout: time.Minute}
	a, b := newStampedeProcess(t, opt, hooks), newStampedeProcess(t, opt, hooks)

	var computations atomic.Int64
	compute := func(ctx context.Context) ([]byte, error) {
		n := computations.Add(1)
		select { // hold the lock until the other process waits (or give up, to fail rather than hang)
		case <-someoneWaits:
		case <-time.After(3 * time.Second):
		}
		return fmt.Appendf(nil, `{"computation":%d}`, n), nil
	}

	const perProcess = 50
	start := make(chan struct{})
	var wg sync.WaitGroup
	results := make(chan getResult, 2*perProcess)
	for _, p := range []stampedeProcess{a, b} {
		for range perProcess {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				res, err := p.g.Get(context.Background(), key, compute)
				results <- getResult{res, err}
			}()
		}
	}
	close(start)
	wg.Wait()
	close(results)

	for r := range results {
		if r.err != nil {
			t.Fatalf("Get: %v", r.err)
		}
		if string(r.res.Body) != `{"computation":1}` {
			t.Errorf("body = %s, want the one computation's", r.res.Body)
		}
		if r.res.Status != Miss && r.res.Status != Hit {
			t.Errorf("status = %s, want MISS or HIT", r.res.Status)
		}
		if r.res.Pattern != PatternStampede {
			t.Errorf("pattern = %q", r.res.Pattern)
		}
	}
	if got := computations.Load(); got != 1 {
		t.Fatalf("computations = %d, want 1", got)
	}
	if got := a.m.Computations.Load() + b.m.Computations.Load(); got != 1 {
		t.Errorf("Metrics.Computations summed = %d, want 1", got)
	}
	if got := a.m.Coalesced.Load() + b.m.Coalesced.Load(); got < 1 {
		t.Errorf("Metrics.Coalesced summed = %d, want >= 1 (the waiting process)", got)
	}
}

// In-process coalescing: concurrent cold requests of one process share one
// flight — one lock attempt, one computation, every other request counted
// as coalesced. The computation ends only once every request is attached to
// a flight; without singleflight each request makes its own lock attempt.
func TestStampedeCoalescesInProcess(t *testing.T) {
	key := stampedeKey(t)
	const n = 30
	var joined, acquires atomic.Int64
	allJoined := make(chan struct{})
	signal := closer(allJoined)
	p := newStampedeProcess(t, StampedeOptions{}, stampedeHooks{
		joinedFlight: func() {
			if joined.Add(1) == n {
				signal()
			}
		},
		beforeAcquire: func() { acquires.Add(1) },
	})
	var computations atomic.Int64
	compute := func(context.Context) ([]byte, error) {
		computations.Add(1)
		select {
		case <-allJoined:
			return []byte(`1`), nil
		case <-time.After(60 * time.Second):
			return nil, errors.New("not every request joined a flight")
		}
	}
	var done []<-chan getResult
	for range n {
		done = append(done, goGet(p, key, compute))
	}
	for _, ch := range done {
		if r := recv(t, ch, "Get"); r.err != nil || r.res.Status != Miss {
			t.Fatalf("%+v %v, want MISS", r.res, r.err)
		}
	}
	if computations.Load() != 1 || acquires.Load() != 1 {
		t.Errorf("computations %d, lock attempts %d; want 1 and 1", computations.Load(), acquires.Load())
	}
	if got := p.m.Coalesced.Load(); got != n-1 {
		t.Errorf("Coalesced = %d, want %d", got, n-1)
	}
}

// Lock safety: holder A outlives its lease (its extension is blocked), B
// takes the lock; when A finishes, its release must leave B's lock alone.
// With a plain DEL instead of compare-and-delete, B's lock disappears.
func TestStampedeReleaseKeepsAnotherHoldersLock(t *testing.T) {
	key := stampedeKey(t)
	unblockExtend := make(chan struct{})
	unblock := closer(unblockExtend)
	defer unblock()
	a := newStampedeProcess(t, StampedeOptions{LockTTL: 200 * time.Millisecond, WaitTimeout: time.Minute},
		stampedeHooks{beforeExtend: func() { <-unblockExtend }})
	b := newStampedeProcess(t, StampedeOptions{LockTTL: time.Minute, WaitTimeout: time.Minute}, stampedeHooks{})
	lockKey := a.g.keys.Lock(key)

	aComputing, bComputing, bMayFinish := make(chan struct{}), make(chan struct{}), make(chan struct{})
	var bToken string
	aDone := goGet(a, key, func(ctx context.Context) ([]byte, error) {
		close(aComputing)
		<-bComputing              // A's lease lapses meanwhile; B takes the lock
		return []byte(`"a"`), nil // ignores ctx: finishes after losing the lease
	})
	waitFor(t, aComputing, "A to compute")
	bDone := goGet(b, key, func(ctx context.Context) ([]byte, error) {
		tok, err := b.rdb.Get(ctx, lockKey).Result()
		if err != nil {
			return nil, err
		}
		bToken = tok
		close(bComputing)
		<-bMayFinish
		return []byte(`"b"`), nil
	})
	waitFor(t, bComputing, "B to take the lapsed lock")
	unblock() // A learns it lost the lock; its computation ignores that and finishes

	ra := recv(t, aDone, "A's Get")
	if ra.err != nil {
		t.Fatalf("A: %v", ra.err)
	}
	got, err := a.rdb.Get(context.Background(), lockKey).Result()
	if err != nil || got != bToken {
		t.Fatalf("after A's release the lock is %q (%v), want B's token %q", got, err, bToken)
	}
	close(bMayFinish)
	if rb := recv(t, bDone, "B's Get"); rb.err != nil || string(rb.res.Body) != `"b"` {
		t.Fatalf("B: %s %v", rb.res.Body, rb.err)
	}
	if n, _ := a.rdb.Exists(context.Background(), lockKey).Result(); n != 0 {
		t.Errorf("B's own release left the lock behind")
	}
}

// While the computation runs the lease is extended: after more than one
// LockTTL the lock is still the holder's. Without keepAlive it lapses.
func TestStampedeHolderExtendsLease(t *testing.T) {
	key := stampedeKey(t)
	var extensions atomic.Int64
	pastOneLease := make(chan struct{})
	signal := closer(pastOneLease)
	// LockTTL 3s: an extension late by up to 2s (a loaded machine) still keeps the lock.
	p := newStampedeProcess(t, StampedeOptions{LockTTL: 3 * time.Second}, stampedeHooks{beforeExtend: func() {
		if extensions.Add(1) == 4 { // 4 × LockTTL/3 > LockTTL since the lock was taken
			signal()
		}
	}})
	lockKey := p.g.keys.Lock(key)
	r := recv(t, goGet(p, key, func(ctx context.Context) ([]byte, error) {
		tok, err := p.rdb.Get(ctx, lockKey).Result()
		if err != nil {
			return nil, fmt.Errorf("lock before: %w", err)
		}
		<-pastOneLease
		now, err := p.rdb.Get(ctx, lockKey).Result()
		if err != nil || now != tok {
			return nil, fmt.Errorf("lock after one lease = %q (%v), want %q", now, err, tok)
		}
		return []byte(`1`), nil
	}), "Get")
	if r.err != nil {
		t.Fatal(r.err)
	}
}

// A holder whose lock was taken from it abandons the computation: its
// context is cancelled with errLockLost, and it leaves the other lock alone.
func TestStampedeHolderAbandonsWhenLockLost(t *testing.T) {
	key := stampedeKey(t)
	p := newStampedeProcess(t, StampedeOptions{LockTTL: 150 * time.Millisecond}, stampedeHooks{})
	lockKey := p.g.keys.Lock(key)
	r := recv(t, goGet(p, key, func(ctx context.Context) ([]byte, error) {
		// Another process takes over (as after a lapse).
		if err := p.rdb.Set(ctx, lockKey, "intruder", time.Minute).Err(); err != nil {
			return nil, err
		}
		<-ctx.Done()
		return nil, ctx.Err()
	}), "Get")
	if !errors.Is(r.err, errLockLost) {
		t.Fatalf("err = %v, want errLockLost", r.err)
	}
	if got, _ := p.rdb.Get(context.Background(), lockKey).Result(); got != "intruder" {
		t.Fatalf("lock = %q, want the intruder's", got)
	}
	if n, _ := p.rdb.Exists(context.Background(), p.g.keys.Stampede(key)).Result(); n != 0 {
		t.Errorf("an abandoned computation stored a value")
	}
}

// The holder dies mid-computation (never extends, never stores): the
// waiters of the other process take the lock once its lease lapses and
// compute once, without error and long before WaitTimeout.
func TestStampedeHolderDiesWaitersRecover(t *testing.T) {
	key := stampedeKey(t)
	dead := make(chan struct{})
	kill := closer(dead)
	defer kill()
	a := newStampedeProcess(t, StampedeOptions{LockTTL: 200 * time.Millisecond},
		stampedeHooks{beforeExtend: func() { <-dead }})
	b := newStampedeProcess(t, StampedeOptions{LockTTL: time.Minute, WaitTimeout: time.Hour}, stampedeHooks{})

	aComputing := make(chan struct{})
	aDone := goGet(a, key, func(ctx context.Context) ([]byte, error) {
		close(aComputing)
		<-dead
		return nil, errors.New("killed")
	})
	waitFor(t, aComputing, "A to hold the lock")

	var computations atomic.Int64
	var done []<-chan getResult
	for range 20 {
		done = append(done, goGet(b, key, func(context.Context) ([]byte, error) {
			computations.Add(1)
			return []byte(`"b"`), nil
		}))
	}
	for _, ch := range done {
		r := recv(t, ch, "a waiter")
		if r.err != nil || string(r.res.Body) != `"b"` {
			t.Fatalf("waiter: %s %v", r.res.Body, r.err)
		}
	}
	if got := computations.Load(); got != 1 {
		t.Errorf("B computed %d times, want 1", got)
	}
	if got := b.m.LockTimeouts.Load(); got != 0 {
		t.Errorf("LockTimeouts = %d: recovered by timing out, want by the lapsed lease", got)
	}
	kill()
	if r := recv(t, aDone, "the dead holder"); r.err == nil {
		t.Errorf("the dead holder's Get succeeded")
	}
}

// Waiters are woken by the holder's notification: with a lease and a
// WaitTimeout of an hour nothing else could end their wait.
func TestStampedeWaitersWokenByNotification(t *testing.T) {
	key := stampedeKey(t)
	bWaits := make(chan struct{})
	a := newStampedeProcess(t, StampedeOptions{LockTTL: time.Hour, WaitTimeout: time.Hour}, stampedeHooks{})
	b := newStampedeProcess(t, StampedeOptions{LockTTL: time.Hour, WaitTimeout: time.Hour},
		stampedeHooks{beforeWait: closer(bWaits)})

	aComputing := make(chan struct{})
	aDone := goGet(a, key, func(context.Context) ([]byte, error) {
		close(aComputing)
		<-bWaits
		return []byte(`"a"`), nil
	})
	waitFor(t, aComputing, "A to hold the lock")
	var bComputed atomic.Int64
	bDone := goGet(b, key, func(context.Context) ([]byte, error) {
		bComputed.Add(1)
		return []byte(`"b"`), nil
	})
	if r := recv(t, aDone, "A"); r.err != nil || r.res.Status != Miss {
		t.Fatalf("A: %+v %v", r.res, r.err)
	}
	r := recv(t, bDone, "B to be woken")
	if r.err != nil || string(r.res.Body) != `"a"` || r.res.Status != Hit {
		t.Fatalf("B: %s %s %v, want A's value as HIT", r.res.Body, r.res.Status, r.err)
	}
	if bComputed.Load() != 0 || b.m.LockTimeouts.Load() != 0 {
		t.Errorf("B computed %d times, %d lock timeouts", bComputed.Load(), b.m.LockTimeouts.Load())
	}
	if b.m.Coalesced.Load() != 1 {
		t.Errorf("B coalesced = %d, want 1", b.m.Coalesced.Load())
	}
}

// Lost wakeup: the holder stores and notifies after B failed to take the
// lock but before B's subscription. B must see the value on its re-read
// after subscribing — not block, not take the lock again.
func TestStampedeNoLostWakeup(t *testing.T) {
	key := stampedeKey(t)
	atSubscribe, aFinished := make(chan struct{}), make(chan struct{})
	var acquires, waits atomic.Int64
	a := newStampedeProcess(t, StampedeOptions{LockTTL: time.Hour}, stampedeHooks{})
	b := newStampedeProcess(t, StampedeOptions{LockTTL: time.Hour, WaitTimeout: time.Hour}, stampedeHooks{
		beforeAcquire:   func() { acquires.Add(1) },
		beforeSubscribe: func() { close(atSubscribe); <-aFinished },
		beforeWait:      func() { waits.Add(1) },
	})

	aComputing := make(chan struct{})
	aDone := goGet(a, key, func(context.Context) ([]byte, error) {
		close(aComputing)
		<-atSubscribe
		return []byte(`"a"`), nil
	})
	waitFor(t, aComputing, "A to hold the lock")
	bDone := goGet(b, key, func(context.Context) ([]byte, error) { return []byte(`"b"`), nil })
	if r := recv(t, aDone, "A"); r.err != nil {
		t.Fatal(r.err)
	}
	close(aFinished) // A stored, released and published before B subscribes

	r := recv(t, bDone, "B")
	if r.err != nil || string(r.res.Body) != `"a"` || r.res.Status != Hit {
		t.Fatalf("B: %s %s %v, want A's value as HIT", r.res.Body, r.res.Status, r.err)
	}
	if acquires.Load() != 1 || waits.Load() != 0 {
		t.Errorf("B tried the lock %d times and waited %d times; want 1 and 0 (value seen on the re-read)",
			acquires.Load(), waits.Load())
	}
}

// Double check: B misses, then A computes, stores and releases before B's
// SET NX. B takes the free lock and must find A's value instead of computing.
func TestStampedeDoubleCheckAfterAcquire(t *testing.T) {
	key := stampedeKey(t)
	atAcquire, aFinished := make(chan struct{}), make(chan struct{})
	var first sync.Once
	a := newStampedeProcess(t, StampedeOptions{}, stampedeHooks{})
	b := newStampedeProcess(t, StampedeOptions{}, stampedeHooks{beforeAcquire: func() {
		first.Do(func() { close(atAcquire); <-aFinished })
	}})

	var computations atomic.Int64
	compute := func(context.Context) ([]byte, error) {
		computations.Add(1)
		return []byte(`1`), nil
	}
	bDone := goGet(b, key, compute)
	waitFor(t, atAcquire, "B to miss")
	if r := recv(t, goGet(a, key, compute), "A"); r.err != nil {
		t.Fatal(r.err)
	}
	close(aFinished)
	r := recv(t, bDone, "B")
	if r.err != nil || r.res.Status != Hit {
		t.Fatalf("B: %+v %v", r.res, r.err)
	}
	if got := computations.Load(); got != 1 {
		t.Fatalf("computations = %d, want 1", got)
	}
}

// A waiter whose holder is alive but slower than WaitTimeout gives up
// waiting, counts a lock timeout, and computes once itself. The slow
// holder's older result, stored last, does not replace the newer one.
func TestStampedeWaitTimeoutComputesOnce(t *testing.T) {
	key := stampedeKey(t)
	// A's lease outlives the test (its lapse is not what is tested here); B's
	// WaitTimeout is, and may be short: it only has to pass.
	a := newStampedeProcess(t, StampedeOptions{LockTTL: time.Minute}, stampedeHooks{})
	b := newStampedeProcess(t, StampedeOptions{WaitTimeout: 300 * time.Millisecond}, stampedeHooks{})

	aComputing, bReturned := make(chan struct{}), make(chan struct{})
	aDone := goGet(a, key, func(context.Context) ([]byte, error) {
		close(aComputing)
		<-bReturned
		return []byte(`"a"`), nil
	})
	waitFor(t, aComputing, "A to hold the lock")
	r := recv(t, goGet(b, key, func(context.Context) ([]byte, error) { return []byte(`"b"`), nil }), "B")
	close(bReturned)
	if r.err != nil || string(r.res.Body) != `"b"` || r.res.Status != Miss {
		t.Fatalf("B: %s %s %v", r.res.Body, r.res.Status, r.err)
	}
	if b.m.LockTimeouts.Load() != 1 || b.m.Computations.Load() != 1 {
		t.Errorf("B: lock timeouts %d, computations %d; want 1 and 1", b.m.LockTimeouts.Load(), b.m.Computations.Load())
	}
	if ra := recv(t, aDone, "A"); ra.err != nil {
		t.Fatal(ra.err)
	}
	e, found, err := readComputed(context.Background(), a.rdb, a.g.keys.Stampede(key))
	if err != nil || !found || string(e.Body) != `"b"` {
		t.Fatalf("stored %s (found %v, %v), want B's newer value", e.Body, found, err)
	}
}

// fakeClock is an injectable Now.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// Past its soft expiry a value is served STALE at once — while the one
// refresh is still computing — and exactly one refresh runs across both
// processes; afterwards the new value is a HIT.
func TestStampedeStaleWhileRevalidate(t *testing.T) {
	key := stampedeKey(t)
	clock := &fakeClock{now: time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)}
	opt := StampedeOptions{TTL: time.Minute, Beta: -1, Now: clock.Now}
	a, b := newStampedeProcess(t, opt, stampedeHooks{}), newStampedeProcess(t, opt, stampedeHooks{})

	if r := recv(t, goGet(a, key, func(context.Context) ([]byte, error) { return []byte(`"v1"`), nil }), "seed"); r.err != nil || r.res.Status != Miss {
		t.Fatalf("seed: %+v %v", r.res, r.err)
	}
	clock.Advance(time.Minute + time.Second)

	var refreshes atomic.Int64
	release := make(chan struct{})
	refresh := func(context.Context) ([]byte, error) {
		refreshes.Add(1)
		<-release
		return []byte(`"v2"`), nil
	}
	var wg sync.WaitGroup
	for _, p := range []stampedeProcess{a, b} {
		for range 25 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res, err := p.g.Get(context.Background(), key, refresh)
				if err != nil || res.Status != Stale || string(res.Body) != `"v1"` {
					t.Errorf("Get: %s %s %v, want v1 STALE", res.Body, res.Status, err)
				}
			}()
		}
	}
	wg.Wait() // every reader answered while the refresh is blocked
	close(release)
	a.g.bg.Wait()
	b.g.bg.Wait()
	if got := refreshes.Load(); got != 1 {
		t.Fatalf("refreshes = %d, want 1", got)
	}
	r := recv(t, goGet(b, key, refresh), "after refresh")
	if r.err != nil || r.res.Status != Hit || string(r.res.Body) != `"v2"` {
		t.Fatalf("after refresh: %s %s %v, want v2 HIT", r.res.Body, r.res.Status, r.err)
	}
}

// A refresh that fails leaves the stale value served, never an error.
func TestStampedeFailedRefreshKeepsServingStale(t *testing.T) {
	key := stampedeKey(t)
	clock := &fakeClock{now: time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)}
	p := newStampedeProcess(t, StampedeOptions{TTL: time.Minute, Beta: -1, Now: clock.Now}, stampedeHooks{})
	if r := recv(t, goGet(p, key, func(context.Context) ([]byte, error) { return []byte(`"v1"`), nil }), "seed"); r.err != nil {
		t.Fatal(r.err)
	}
	clock.Advance(2 * time.Minute)
	fail := func(context.Context) ([]byte, error) { return nil, errors.New("database unavailable") }
	for range 3 {
		r := recv(t, goGet(p, key, fail), "stale read")
		if r.err != nil || r.res.Status != Stale || string(r.res.Body) != `"v1"` {
			t.Fatalf("%s %s %v, want v1 STALE", r.res.Body, r.res.Status, r.err)
		}
		p.g.bg.Wait()
	}
}

// XFetch inside the guard: a fresh value read with a draw that makes
// now − δβ·ln(u) reach the expiry is a HIT and starts one background
// recomputation; a draw that does not, starts none.
func TestStampedeXFetchRecomputesEarly(t *testing.T) {
	key := stampedeKey(t)
	clock := &fakeClock{now: time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)}
	var draw atomic.Uint64 // math.Float64bits would do; keep it simple: thousandths
	opt := StampedeOptions{TTL: time.Minute, Beta: 1, Now: clock.Now,
		Rand: func() float64 { return float64(draw.Load()) / 1000 }}
	p := newStampedeProcess(t, opt, stampedeHooks{})

	var computations atomic.Int64
	compute := func(context.Context) ([]byte, error) {
		computations.Add(1)
		clock.Advance(10 * time.Second) // δ = 10s on the guard's clock
		return []byte(`1`), nil
	}
	if r := recv(t, goGet(p, key, compute), "seed"); r.err != nil {
		t.Fatal(r.err)
	}
	clock.Advance(40 * time.Second) // 20s before soft expiry: P(early) = exp(−20/10) ≈ 0.135

	draw.Store(500) // −ln(0.5)·10s ≈ 6.9s < 20s: not yet
	if r := recv(t, goGet(p, key, compute), "read"); r.err != nil || r.res.Status != Hit {
		t.Fatalf("%+v %v", r.res, r.err)
	}
	p.g.bg.Wait()
	if got := computations.Load(); got != 1 {
		t.Fatalf("computations = %d after a draw below the threshold, want 1", got)
	}

	draw.Store(900) // −ln(0.1)·10s ≈ 23s ≥ 20s: recompute early
	if r := recv(t, goGet(p, key, compute), "read"); r.err != nil || r.res.Status != Hit {
		t.Fatalf("%+v %v, want HIT while recomputing early", r.res, r.err)
	}
	p.g.bg.Wait()
	if got := computations.Load(); got != 2 {
		t.Fatalf("computations = %d after a draw above the threshold, want 2", got)
	}
}

// Redis unreachable: computed directly, answered BYPASS, the error counted
// under the guard's resource label.
func TestStampedeRedisDownBypasses(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 100 * time.Millisecond})
	defer rdb.Close()
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg, quietLog)
	g := NewStampedeGuard(Backend{Redis: rdb, Keys: Keys{Prefix: testenv.Get(t).RedisPrefix}, Metrics: m, Logger: quietLog},
		StampedeOptions{Resource: "stats"})
	defer g.Close()
	res, err := g.Get(context.Background(), stampedeKey(t), func(context.Context) ([]byte, error) { return []byte(`1`), nil })
	if err != nil || res.Status != Bypass || string(res.Body) != `1` {
		t.Fatalf("%s %s %v, want BYPASS", res.Body, res.Status, err)
	}
	if _, _, errs := m.Totals(); errs < 1 {
		t.Errorf("Redis errors counted = %d, want >= 1", errs)
	}
	if m.Computations.Load() != 1 {
		t.Errorf("computations = %d, want 1", m.Computations.Load())
	}
	lookups := map[string]string{"resource": "stats", "pattern": PatternStampede, "result": string(Bypass)}
	if v := counterValue(t, reg, "cache_lookups_total", lookups); v != 1 {
		t.Errorf("cache_lookups_total%v = %v, want 1", lookups, v)
	}
	errs := map[string]string{"resource": "stats", "pattern": PatternStampede, "op": "get"}
	if v := counterValue(t, reg, "cache_errors_total", errs); v != 1 {
		t.Errorf("cache_errors_total%v = %v, want 1", errs, v)
	}
}

// The stored entry carries δ and a soft expiry, and Redis holds it for
// soft TTL + StaleFor so that stale serving is possible.
func TestStampedeStoredEntry(t *testing.T) {
	key := stampedeKey(t)
	clock := &fakeClock{now: time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)}
	p := newStampedeProcess(t, StampedeOptions{TTL: time.Minute, StaleFor: 2 * time.Minute, Now: clock.Now}, stampedeHooks{})
	if r := recv(t, goGet(p, key, func(context.Context) ([]byte, error) {
		clock.Advance(3 * time.Second)
		return []byte(`{"x":1}`), nil
	}), "Get"); r.err != nil {
		t.Fatal(r.err)
	}
	ctx := context.Background()
	e, found, err := readComputed(ctx, p.rdb, p.g.keys.Stampede(key))
	if err != nil || !found {
		t.Fatalf("entry: found %v, %v", found, err)
	}
	start := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	if !e.ComputedAt.Equal(start) || e.Delta != 3*time.Second || !e.SoftExpiry.Equal(start.Add(63*time.Second)) || string(e.Body) != `{"x":1}` {
		t.Errorf("entry = %+v", e)
	}
	ttl, err := p.rdb.PTTL(ctx, p.g.keys.Stampede(key)).Result()
	if err != nil || ttl <= 2*time.Minute || ttl > 3*time.Minute {
		t.Errorf("PTTL = %v (%v), want soft + StaleFor = 3m", ttl, err)
	}
}

// A caller that already left (its client hung up) fails its own read of
// the value; that must not start a BYPASS flight that live callers join,
// nor count as a Redis error. (Seen in make bench: the last wrk request of
// one scenario made the next scenario's first request answer BYPASS.)
func TestStampedeCallerThatLeftDoesNotBypassOthers(t *testing.T) {
	joined := make(chan struct{}, 4)
	p := newStampedeProcess(t, StampedeOptions{}, stampedeHooks{joinedFlight: func() { joined <- struct{}{} }})
	key := stampedeKey(t)
	release := make(chan struct{})
	compute := func(context.Context) ([]byte, error) { <-release; return []byte(`1`), nil }

	gone, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := p.g.Get(gone, key, compute); err == nil {
		t.Fatal("a caller that left must get its context's error")
	}
	for len(joined) > 0 { // the departed caller's flight, if one was started
		<-joined
	}
	done := make(chan Result, 1)
	go func() {
		res, err := p.g.Get(context.Background(), key, compute)
		if err != nil {
			t.Error(err)
		}
		done <- res
	}()
	waitFor(t, joined, "the live caller to join a flight")
	close(release)
	if res := <-done; res.Status != Miss {
		t.Fatalf("live caller: %s, want MISS (computed and cached, not bypassed)", res.Status)
	}
	if _, _, errs := p.m.Totals(); errs != 0 {
		t.Fatalf("%d Redis errors counted for a caller that left", errs)
	}
}
