package cache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Namespace is version (namespace) invalidation for list pages: every page
// is cached under a key that embeds the namespace's current version,
// "{name}:v{N}:{sha256 of the query}", and a change bumps the version
// ("ns:{name}", INCR), which makes every cached page of the namespace
// unreachable in O(1); the old pages expire by their TTL. Its guarantees:
//
//   - One round trip per read: one script reads the version and GETs the
//     page under it.
//   - A fill that races a bump never serves stale data: the version is read
//     BEFORE the database load, so a load that may predate a write is filed
//     under the version that write's bump retired; the fill script also
//     compares the version and drops the page when it changed, so not even
//     unreachable garbage is written.
//   - The version never goes back: a missing counter (never written, or
//     lost to eviction) restarts from the Redis clock in microseconds, above
//     any version whose pages may still be alive.
//   - Every page is written with a TTL (±jitter); bodies go through the Codec
//     (encrypted).
//   - Redis errors are never swallowed: logged with the key, counted, and the
//     read is served from the database with BYPASS. No read is served from
//     Redis while the Gate is closed (a list invalidation that failed is
//     in the invalidation log until some process applies it).
//
// In a Redis Cluster the version counter and the pages would need one hash
// slot; this service targets a single primary (with replicas or Sentinel).
// A Namespace is safe for concurrent use.
type Namespace struct {
	name     string
	resource string // metrics label
	rdb      Client
	keys     Keys
	codec    *Codec
	metrics  *Metrics
	gate     *Gate
	ttl      time.Duration
	jitter   float64

	// afterLoad is a test hook: it runs between the database load and the
	// fill, to force a write and its bump in between.
	afterLoad func()
}

// PageOptions configures the list caches (Namespace, ReadThrough). A zero
// TTL takes the contract's default (5 minutes).
type PageOptions struct {
	TTL    time.Duration // page lifetime (LIST_CACHE_TTL)
	Jitter float64       // ±fraction applied to TTL (CACHE_TTL_JITTER)
}

// withDefaults fills the zero fields of o.
func (o PageOptions) withDefaults() PageOptions {
	if o.TTL <= 0 {
		o.TTL = 5 * time.Minute
	}
	o.Jitter = clampJitter(o.Jitter)
	return o
}

// NewNamespace returns the namespace of resource's list pages
// (resource.Lists, bumped by ListInvalidation on every change of the
// resource) on b: pages live opt.TTL ± opt.Jitter.
func NewNamespace(b Backend, resource Resource, opt PageOptions) *Namespace {
	b = b.withDefaults()
	opt = opt.withDefaults()
	return &Namespace{
		name: resource.Lists, resource: resource.Kind, rdb: b.Redis, keys: b.Keys, codec: b.Codec, metrics: b.Metrics, gate: b.Gate,
		ttl: opt.TTL, jitter: opt.Jitter,
	}
}

// NamespacePage is a cached page of a namespace: "{name}:v{version}:{hash}".
func (k Keys) NamespacePage(name string, version int64, hash string) string {
	return k.namespacePages(name) + strconv.FormatInt(version, 10) + ":" + hash
}

// namespacePages is what every page key of a namespace starts with: "{name}:v".
func (k Keys) namespacePages(name string) string { return k.Prefix + name + ":v" }

// nsRead returns {version, page}: the version of KEYS[1] (started from the
// clock when missing) and the GET of the page ARGV[1] .. version .. ARGV[2].
// The page key is built here because it depends on the version just read;
// ARGV carries its two halves, both made by Keys.NamespacePage.
var nsRead = redis.NewScript(luaCounters + `
local v = redis.call('GET', KEYS[1])
if not v then
  v = clock()
  redis.call('SET', KEYS[1], v)
end
return {v, redis.call('GET', ARGV[1] .. v .. ARGV[2])}`)

// nsFill writes the page KEYS[2] (ARGV[2], PX ARGV[3]) only while the
// version KEYS[1] is still ARGV[1], the one read before the load.
var nsFill = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
return 1`)

// nsBump increments the version KEYS[1], restarting a missing counter from
// the clock so that it never repeats a version.
var nsBump = redis.NewScript(luaCounters + `return bump(KEYS[1])`)

// QueryHash returns the hex sha256 of a canonical query string: the page's
// identity inside its namespace.
func QueryHash(canonical string) string {
	sum := sha256.Sum256([]byte(canonical))
	return hex.EncodeToString(sum[:])
}

// Get returns the page of the query whose canonical string is query,
// loading it with load on a miss. load returns the exact response body.
// Result.Status is HIT, MISS, or BYPASS when Redis failed (or the Gate
// is closed); Result.Pattern is "version". Errors are load's.
func (n *Namespace) Get(ctx context.Context, query string, load func(context.Context) ([]byte, error)) (Result, error) {
	epoch, open := n.gate.Admit()
	if !open {
		return n.loadOnly(ctx, load, Bypass)
	}
	hash := QueryHash(query)
	// The page key around the version the script reads: "{name}:v" .. N .. ":{hash}".
	head, tail := n.keys.namespacePages(n.name), ":"+hash
	nsKey := n.keys.Namespace(n.name)

	res, err := nsRead.Run(ctx, n.rdb, []string{nsKey}, head, tail).Slice()
	if err != nil {
		n.metrics.Error(ctx, n.resource, PatternNamespace, "read", nsKey, err)
		return n.loadOnly(ctx, load, Bypass)
	}
	if !n.gate.Still(epoch) {
		return n.loadOnly(ctx, load, Bypass)
	}
	versionStr, _ := res[0].(string)
	version, err := strconv.ParseInt(versionStr, 10, 64)
	if err != nil {
		n.metrics.Error(ctx, n.resource, PatternNamespace, "read", nsKey, fmt.Errorf("namespace version %q: %w", versionStr, err))
		return n.loadOnly(ctx, load, Bypass)
	}
	pageKey := n.keys.NamespacePage(n.name, version, hash)
	if raw, ok := res[1].(string); ok {
		e, err := n.codec.Decode([]byte(raw))
		if err == nil && e.Kind == KindValue {
			n.metrics.Lookup(n.resource, PatternNamespace, Hit)
			return Result{Body: e.Body, Status: Hit, Pattern: PatternNamespace}, nil
		}
		if err == nil {
			err = fmt.Errorf("%w: kind %q in a list page", ErrUndecodable, e.Kind)
		}
		// Another key or format: a miss, counted; the fill below overwrites it.
		n.metrics.Error(ctx, n.resource, PatternNamespace, "decode", pageKey, err)
	}

	body, err := load(ctx)
	if err != nil {
		return Result{Status: Miss, Pattern: PatternNamespace}, err
	}
	if n.afterLoad != nil {
		n.afterLoad()
	}
	ttl := spreadTTL(n.ttl, n.jitter)
	entry := n.codec.Value(version, body)
	if err := nsFill.Run(ctx, n.rdb, []string{nsKey, pageKey}, versionStr, entry, ttl.Milliseconds()).Err(); err != nil {
		// The page is served from the database either way; only the fill is lost.
		n.metrics.Error(ctx, n.resource, PatternNamespace, "fill", pageKey, err)
	}
	n.metrics.Lookup(n.resource, PatternNamespace, Miss)
	return Result{Body: body, Status: Miss, Pattern: PatternNamespace}, nil
}

func (n *Namespace) loadOnly(ctx context.Context, load func(context.Context) ([]byte, error), s Status) (Result, error) {
	n.metrics.Lookup(n.resource, PatternNamespace, s)
	body, err := load(ctx)
	return Result{Body: body, Status: s, Pattern: PatternNamespace}, err
}

// Bump makes every cached page of the namespace unreachable and returns the
// new version. It returns Redis's error; write paths go through
// ListInvalidation, which never fails the write.
func (n *Namespace) Bump(ctx context.Context) (int64, error) {
	v, err := nsBump.Run(ctx, n.rdb, []string{n.keys.Namespace(n.name)}).Int64()
	if err != nil {
		return 0, fmt.Errorf("bump namespace %s: %w", n.name, err)
	}
	return v, nil
}

// Version returns the current version of the namespace, or 0 when the
// counter does not exist yet.
func (n *Namespace) Version(ctx context.Context) (int64, error) {
	v, err := n.rdb.Get(ctx, n.keys.Namespace(n.name)).Int64()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read namespace %s: %w", n.name, err)
	}
	return v, nil
}

// Name returns the namespace's name ("analyses").
func (n *Namespace) Name() string { return n.name }
