// Package cache holds the caching patterns that put Redis in front of
// Postgres, as a library that knows no domain: a resource (an entity kind)
// gets every pattern by wiring (docs/adding-a-resource.md), never by editing
// this package. One pattern per file, each with its guarantees in its doc
// comment and a test beside it that forces the race it defends against:
//
//   - aside.go: cache-aside reads with fill leases, negative caching
//     (ErrNotFound), and the version-guarded entry writes;
//   - writethrough.go: the write path: entry and lists updated after the
//     commit, settled by the invalidation log;
//   - namespace.go: version (namespace) invalidation for filtered lists;
//   - readthrough.go and tags.go: read-through per-group lists whose
//     entries carry tags, and tag invalidation;
//   - invalidate.go: list invalidation after writes, and key, pattern, tag
//     and namespace invalidation for the admin API;
//   - changelog.go, gate.go and breaker.go: the invalidation log (a
//     transactional outbox in Postgres, records in cache/outbox) applied to
//     Redis by every process, the gate that keeps reads off Redis until it
//     is, and the circuit breaker that tells an outage from load;
//   - writebehind.go: write-behind ingest through a Redis Stream;
//   - stampede.go: StampedeGuard for expensive computations;
//   - codec.go: the one entry format, encrypted.
//
// What every pattern shares is a Backend (Redis client, key prefix, codec,
// metrics, gate); what it caches is named by a Resource (its Kind builds
// the keys and labels the metrics). Nothing here knows about HTTP or about
// analyses; example_project_test.go wires a second resource.
package cache

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync/atomic"
	"time"

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

// ErrNotFound is the cache's "not found". A load that finds nothing
// returns it (or an error wrapping it): Aside caches that answer as a
// negative entry, and returns ErrNotFound for every negative hit. The
// caller maps it to its own resource's error ("Analysis not found").
var ErrNotFound = errors.New("not found")

// Resource names one kind of cached entity and the caches derived from it.
// Every pattern that handles an entity takes its Resource: keys are built
// from Kind and an id, metrics carry Kind as their "resource" label, and
// the invalidation of a change to the entity (ListInvalidation, Log) is
// derived from Lists and Group.
type Resource struct {
	// Kind names the entity: entries are "{Kind}:{id}" ("analysis:{id}")
	// and its metrics carry resource="{Kind}".
	Kind string
	// Lists is the namespace of the entity's filtered list pages
	// ("analyses"), bumped by every change; "" when it has none.
	Lists string
	// Group is the tag prefix of per-group lists ("user"): a change to an
	// entity of group g invalidates the tag "{Group}:{g}"; "" when the
	// entity has no per-group lists.
	Group string
	// AllGroups is the tag every per-group list also carries ("analyses"),
	// so the admin API can drop all of them at once; writes never
	// invalidate it. "" when the lists carry no such tag.
	AllGroups string
}

// GroupTag is the tag of the per-group lists of group: "{Group}:{group}".
func (r Resource) GroupTag(group string) string { return r.Group + ":" + group }

// Backend is what every pattern of one cache shares: the Redis client, the
// key prefix, the entry codec, the metrics, the gate and the logger. Build
// one per process and pass it to each New…; Logger may be nil
// (slog.Default). Gate may be nil only in tests of a pattern alone (an
// always-open gate).
type Backend struct {
	Redis   Client
	Keys    Keys
	Codec   *Codec
	Metrics *Metrics
	Gate    *Gate
	Logger  *slog.Logger
}

// withDefaults fills the optional fields of b.
func (b Backend) withDefaults() Backend {
	if b.Logger == nil {
		b.Logger = slog.Default()
	}
	if b.Gate == nil {
		b.Gate = new(Gate) // the zero Gate is open
	}
	if b.Metrics == nil {
		b.Metrics = NewMetrics(nil, b.Logger)
	}
	return b
}

// Keys builds the physical Redis keys of the service: Prefix + logical key.
// Every key the service touches is built here, so nothing escapes the prefix.
type Keys struct {
	Prefix string
}

// Entity is the entry of one entity of kind: "{kind}:{id}".
func (k Keys) Entity(kind, id string) string { return k.Prefix + kind + ":" + id }

// Namespace is the version counter of a namespace: "ns:{name}".
func (k Keys) Namespace(name string) string { return k.Prefix + "ns:" + name }

// Tag is the member set of a tag: "tag:{tag}".
func (k Keys) Tag(tag string) string { return k.Prefix + "tag:" + tag }

// TagGeneration is the generation counter of a tag: "taggen:{tag}".
func (k Keys) TagGeneration(tag string) string { return k.Prefix + "taggen:" + tag }

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
	lookups *prometheus.CounterVec // resource, pattern, result
	errors  *prometheus.CounterVec // resource, pattern, op
	log     *slog.Logger

	hits, misses, errorsTotal atomic.Int64

	// Write-behind counters (CacheStats.write_behind).
	WBFlushed, WBRetried, WBDeadLettered atomic.Int64
	// Stampede counters (CacheStats.stampede).
	Computations, Coalesced, LockTimeouts atomic.Int64

	// by resource
	wbFlushed, wbRetried, wbDead          *prometheus.CounterVec
	computations, coalesced, lockTimeouts *prometheus.CounterVec
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
	counter := func(name, help string) *prometheus.CounterVec {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, []string{"resource"})
		reg.MustRegister(c)
		return c
	}
	m := &Metrics{
		lookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cache_lookups_total", Help: "Cache lookups by resource, pattern and result (hit, miss, stale, bypass).",
		}, []string{"resource", "pattern", "result"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cache_errors_total", Help: "Redis errors by resource, pattern and operation.",
		}, []string{"resource", "pattern", "op"}),
		log:          log,
		wbFlushed:    counter("write_behind_flushed_total", "Write-behind entries committed to the store, by resource."),
		wbRetried:    counter("write_behind_retried_total", "Write-behind flush attempts that failed and will be retried, by resource."),
		wbDead:       counter("write_behind_dead_lettered_total", "Write-behind entries moved to the dead-letter stream, by resource."),
		computations: counter("stampede_computations_total", "Expensive computations actually run, by resource."),
		coalesced:    counter("stampede_coalesced_total", "Requests served by another request's computation, by resource."),
		lockTimeouts: counter("stampede_lock_timeouts_total", "Waits for another computation that timed out, by resource."),
	}
	reg.MustRegister(m.lookups, m.errors)
	return m
}

// Lookup counts one read of resource through pattern with its outcome.
func (m *Metrics) Lookup(resource, pattern string, s Status) {
	switch s {
	case Hit, Stale:
		m.hits.Add(1)
	case Miss:
		m.misses.Add(1)
	}
	m.lookups.WithLabelValues(resource, pattern, string(s)).Inc()
}

// Error logs a Redis failure of resource's pattern with its key and counts
// it. It never hides the failure: callers fall back to Postgres and answer
// BYPASS.
func (m *Metrics) Error(ctx context.Context, resource, pattern, op, key string, err error) {
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		// The caller went away (a client hung up): not a Redis failure,
		// so neither counted nor logged as one.
		m.log.LogAttrs(ctx, slog.LevelDebug, "cache call abandoned by its caller",
			slog.String("resource", resource), slog.String("pattern", pattern), slog.String("op", op), slog.String("key", key))
		return
	}
	m.errorsTotal.Add(1)
	m.errors.WithLabelValues(resource, pattern, op).Inc()
	m.log.LogAttrs(ctx, slog.LevelWarn, "cache error",
		slog.String("resource", resource), slog.String("pattern", pattern), slog.String("op", op), slog.String("key", key), slog.Any("error", err))
}

// Flushed counts n write-behind entries of resource committed to its store.
func (m *Metrics) Flushed(resource string, n int) {
	m.WBFlushed.Add(int64(n))
	m.wbFlushed.WithLabelValues(resource).Add(float64(n))
}

// Retried counts n entries of resource whose flush failed and will be retried.
func (m *Metrics) Retried(resource string, n int) {
	m.WBRetried.Add(int64(n))
	m.wbRetried.WithLabelValues(resource).Add(float64(n))
}

// DeadLettered counts n entries of resource moved to the dead-letter stream.
func (m *Metrics) DeadLettered(resource string, n int) {
	m.WBDeadLettered.Add(int64(n))
	m.wbDead.WithLabelValues(resource).Add(float64(n))
}

// Computed counts one expensive computation of resource actually run.
func (m *Metrics) Computed(resource string) {
	m.Computations.Add(1)
	m.computations.WithLabelValues(resource).Inc()
}

// CoalescedOne counts one request of resource served by another request's computation.
func (m *Metrics) CoalescedOne(resource string) {
	m.Coalesced.Add(1)
	m.coalesced.WithLabelValues(resource).Inc()
}

// LockTimeout counts one wait of resource for another computation that timed out.
func (m *Metrics) LockTimeout(resource string) {
	m.LockTimeouts.Add(1)
	m.lockTimeouts.WithLabelValues(resource).Inc()
}

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

// ChangeListener is told, before a write answers, that entities of these
// groups changed, so every list that could contain them is invalidated
// (ListInvalidation: the resource's list namespace and each group's tag).
// It returns Redis's error; the write's Log settles the change either way.
type ChangeListener interface {
	Changed(ctx context.Context, groups ...string) error
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
