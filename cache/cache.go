// Package cache holds the caching patterns that put Redis in front of
// Postgres, one pattern per file, each with its guarantees in its doc comment
// and a test beside it that forces the race it defends against:
//
//   - aside.go: cache-aside reads with fill leases, negative caching, and the
//     version-guarded write-through set and delete tombstone;
//   - namespace.go: version (namespace) invalidation for list pages;
//   - readthrough.go and tags.go: a read-through repository decorator whose
//     entries carry tags, and tag invalidation;
//   - invalidate.go: key, pattern, tag and namespace invalidation for the admin API;
//   - changelog.go, gate.go and breaker.go: the invalidation log (a
//     transactional outbox in Postgres) applied to Redis by every process,
//     the gate that keeps reads off Redis until it is, and the circuit
//     breaker that tells an outage from load;
//   - writebehind.go: write-behind ingest through a Redis Stream;
//   - stampede.go: StampedeGuard for expensive computations;
//   - codec.go: the one entry format, encrypted.
//
// Nothing here knows about HTTP.
package cache

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// Status says where a read was served from; it becomes the X-Cache header.
type Status string

// The X-Cache values of the contract.
const (
	Hit    Status = "HIT"    // served from Redis
	Miss   Status = "MISS"   // loaded from Postgres (and cached when allowed)
	Stale  Status = "STALE"  // served a value past its soft expiry while one refresh runs
	Bypass Status = "BYPASS" // Redis unavailable: served from Postgres, nothing cached
)

// Pattern names, used as the X-Cache-Pattern header and as metric labels.
const (
	PatternAside        = "cache-aside"
	PatternWriteThrough = "write-through"
	PatternWriteBehind  = "write-behind"
	PatternNamespace    = "version"
	PatternReadThrough  = "read-through"
	PatternStampede     = "stampede-protection"
)

// Result is a read that may have come from the cache: the exact response
// body, the entity version when there is one (for ETag), and where it came from.
type Result struct {
	Body    []byte
	Version int64
	Status  Status
	// Pattern names the pattern that served it (X-Cache-Pattern).
	Pattern string
}

// Keys builds the physical Redis keys of the service: Prefix + logical key.
// Every key the service touches is built here, so nothing escapes the prefix.
type Keys struct {
	Prefix string
}

// Analysis is the entry of one analysis: "analysis:{id}".
func (k Keys) Analysis(id uuid.UUID) string { return k.Prefix + "analysis:" + id.String() }

// Namespace is the version counter of a namespace: "ns:{name}".
func (k Keys) Namespace(name string) string { return k.Prefix + "ns:" + name }

// Tag is the member set of a tag: "tag:{tag}".
func (k Keys) Tag(tag string) string { return k.Prefix + "tag:" + tag }

// TagGeneration is the generation counter of a tag: "taggen:{tag}".
func (k Keys) TagGeneration(tag string) string { return k.Prefix + "taggen:" + tag }

// UserList is a cached page of one owner's analyses: "ulist:{owner}:{skip}:{limit}".
func (k Keys) UserList(owner uuid.UUID, skip, limit int) string {
	return k.Prefix + "ulist:" + owner.String() + ":" + strconv.Itoa(skip) + ":" + strconv.Itoa(limit)
}

// Lock is the stampede lock of a logical key: "lock:{key}".
func (k Keys) Lock(logical string) string { return k.Prefix + "lock:" + logical }

// Logical returns the logical key of a physical one.
func (k Keys) Logical(physical string) string { return physical[len(k.Prefix):] }

// Client is what the patterns need from Redis: any go-redis client
// (single node, Sentinel or Cluster).
type Client = redis.UniversalClient

// Metrics counts cache outcomes per pattern, for /metrics and for the
// CacheStats of the admin API (which reads the atomic mirrors). The zero
// value is not usable; build it with NewMetrics.
type Metrics struct {
	lookups *prometheus.CounterVec // pattern, result
	errors  *prometheus.CounterVec // pattern, op
	log     *slog.Logger

	hits, misses, errorsTotal atomic.Int64

	// Write-behind counters (CacheStats.write_behind).
	WBFlushed, WBRetried, WBDeadLettered atomic.Int64
	// Stampede counters (CacheStats.stampede).
	Computations, Coalesced, LockTimeouts atomic.Int64

	wbFlushed, wbRetried, wbDead          prometheus.Counter
	computations, coalesced, lockTimeouts prometheus.Counter
}

// NewMetrics registers the cache metrics on reg (nil: a private registry,
// for tests) and logs cache errors to log.
func NewMetrics(reg prometheus.Registerer, log *slog.Logger) *Metrics {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	if log == nil {
		log = slog.Default()
	}
	counter := func(name, help string) prometheus.Counter {
		c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
		reg.MustRegister(c)
		return c
	}
	m := &Metrics{
		lookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cache_lookups_total", Help: "Cache lookups by pattern and result (hit, miss, stale, bypass).",
		}, []string{"pattern", "result"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cache_errors_total", Help: "Redis errors by pattern and operation.",
		}, []string{"pattern", "op"}),
		log:          log,
		wbFlushed:    counter("write_behind_flushed_total", "Write-behind entries committed to Postgres."),
		wbRetried:    counter("write_behind_retried_total", "Write-behind flush attempts that failed and will be retried."),
		wbDead:       counter("write_behind_dead_lettered_total", "Write-behind entries moved to the dead-letter stream."),
		computations: counter("stampede_computations_total", "Expensive computations actually run."),
		coalesced:    counter("stampede_coalesced_total", "Requests served by another request's computation."),
		lockTimeouts: counter("stampede_lock_timeouts_total", "Waits for another computation that timed out."),
	}
	reg.MustRegister(m.lookups, m.errors)
	return m
}

// Lookup counts one read of pattern with its outcome.
func (m *Metrics) Lookup(pattern string, s Status) {
	switch s {
	case Hit, Stale:
		m.hits.Add(1)
	case Miss:
		m.misses.Add(1)
	}
	m.lookups.WithLabelValues(pattern, string(s)).Inc()
}

// Error logs a Redis failure with its key and counts it. It never hides
// the failure: callers fall back to Postgres and answer BYPASS.
func (m *Metrics) Error(ctx context.Context, pattern, op, key string, err error) {
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		// The caller went away (a client hung up): not a Redis failure,
		// so neither counted nor logged as one.
		m.log.LogAttrs(ctx, slog.LevelDebug, "cache call abandoned by its caller",
			slog.String("pattern", pattern), slog.String("op", op), slog.String("key", key))
		return
	}
	m.errorsTotal.Add(1)
	m.errors.WithLabelValues(pattern, op).Inc()
	m.log.LogAttrs(ctx, slog.LevelWarn, "cache error",
		slog.String("pattern", pattern), slog.String("op", op), slog.String("key", key), slog.Any("error", err))
}

// Flushed counts n write-behind entries committed to Postgres.
func (m *Metrics) Flushed(n int) { m.WBFlushed.Add(int64(n)); m.wbFlushed.Add(float64(n)) }

// Retried counts one failed flush attempt that will be retried.
func (m *Metrics) Retried(n int) { m.WBRetried.Add(int64(n)); m.wbRetried.Add(float64(n)) }

// DeadLettered counts n entries moved to the dead-letter stream.
func (m *Metrics) DeadLettered(n int) { m.WBDeadLettered.Add(int64(n)); m.wbDead.Add(float64(n)) }

// Computed counts one expensive computation actually run.
func (m *Metrics) Computed() { m.Computations.Add(1); m.computations.Inc() }

// CoalescedOne counts one request served by another request's computation.
func (m *Metrics) CoalescedOne() { m.Coalesced.Add(1); m.coalesced.Inc() }

// LockTimeout counts one wait for another computation that timed out.
func (m *Metrics) LockTimeout() { m.LockTimeouts.Add(1); m.lockTimeouts.Inc() }

// Totals returns hits (HIT and STALE), misses and Redis errors since start.
func (m *Metrics) Totals() (hits, misses, errors int64) {
	return m.hits.Load(), m.misses.Load(), m.errorsTotal.Load()
}

// Stats is the CacheStats of the admin API: this process's counters since start.
type Stats struct {
	Hits, Misses, Errors int64
	HitRatio             float64
	WriteBehind          WriteBehindStats
	Stampede             StampedeStats
}

// WriteBehindStats is CacheStats.write_behind. Pending is read from Redis
// (the stream's pending and unread entries), the rest are counters.
type WriteBehindStats struct {
	Pending, Flushed, Retried, DeadLettered int64
}

// StampedeStats is CacheStats.stampede.
type StampedeStats struct {
	Computations, Coalesced, LockTimeouts int64
}

// Snapshot returns the counters as Stats; WriteBehind.Pending is left for
// the caller to fill from Redis.
func (m *Metrics) Snapshot() Stats {
	h, mi, e := m.Totals()
	s := Stats{Hits: h, Misses: mi, Errors: e}
	if h+mi > 0 {
		s.HitRatio = float64(h) / float64(h+mi)
	}
	s.WriteBehind = WriteBehindStats{Flushed: m.WBFlushed.Load(), Retried: m.WBRetried.Load(), DeadLettered: m.WBDeadLettered.Load()}
	s.Stampede = StampedeStats{Computations: m.Computations.Load(), Coalesced: m.Coalesced.Load(), LockTimeouts: m.LockTimeouts.Load()}
	return s
}

// ChangeListener is told, before a write answers, that analyses of these
// owners changed, so every list that could contain them is invalidated
// (the list namespace version and each owner's tag). It returns Redis's
// error; the write's Log settles the change either way.
type ChangeListener interface {
	AnalysesChanged(ctx context.Context, owners ...uuid.UUID) error
}

// Selector is the body of POST /api/v1/cache/invalidate: exactly one field
// is set (the API layer enforces that). Keys and Pattern are logical (the
// prefix is added here, never by the client), so nothing outside
// CACHE_PREFIX can be named.
type Selector struct {
	Keys      []string
	Pattern   *string
	Tags      []string
	Namespace *string
}

// clampJitter bounds a configured TTL jitter to [0, 0.9]: a TTL never
// reaches zero and never nearly doubles.
func clampJitter(j float64) float64 { return min(max(j, 0), 0.9) }

// spreadTTL returns ttl scaled by a uniform factor in [1−jitter, 1+jitter],
// never below one millisecond, so entries written together expire apart.
// Every TTL the patterns write goes through it.
func spreadTTL(ttl time.Duration, jitter float64) time.Duration {
	if jitter > 0 {
		ttl = spread(ttl, jitter, rand.Float64())
	}
	return max(ttl, time.Millisecond)
}

// spread scales d by 1 + jitter·(2u−1) for a draw u in [0, 1).
func spread(d time.Duration, jitter, u float64) time.Duration {
	return time.Duration(float64(d) * (1 + jitter*(2*u-1)))
}

// newToken returns 128 random bits, hex: unguessable and unique across
// processes, for fill leases and stampede locks alike.
func newToken() string {
	var b [16]byte
	_, _ = crand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}

// deleteIfHolds deletes KEYS[1] only while it still holds ARGV[1]: a fill
// lease or a stampede lock is released by its owner and never by a process
// whose lease expired and was taken over.
var deleteIfHolds = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0`)
