package cache

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Aside is cache-aside with fill leases for reads, and version-guarded
// write-through for writes, on the entries of one Resource ("{Kind}:{id}",
// docs/design.md, "Single analysis"). Its guarantees:
//
//   - A read that races a write never puts an older version back into
//     Redis: a miss claims the key with a lease carrying a random token, and
//     fills it with a compare-and-set that writes only while the key still
//     holds that exact lease. A Set or Tombstone in between replaces the
//     lease, so the stale load is served once but never cached.
//   - Two writers racing on one key never leave an older version in Redis:
//     Set and Tombstone go through one Lua guard that replaces the entry
//     only when it is absent, a lease, undecodable, or older. At equal
//     versions a tombstone beats a value, so a delayed write-through of a
//     deleted entity cannot resurrect it, and a committed value (V) beats
//     a value written behind (W), which is only an accepted ingest.
//   - A value written behind (W, see WriteBehind) is a HIT like a value,
//     reported with Pattern PatternWriteBehind; every other read result
//     reports PatternAside.
//   - "Not found" (a load returning ErrNotFound) is cached as a negative
//     entry (NegativeTTL) and answered as a HIT with ErrNotFound; a load
//     error of any other kind is never cached.
//   - Every key written has a TTL: values TTL, negatives and tombstones
//     NegativeTTL (both ±Jitter, uniformly), leases LeaseTTL.
//   - Redis errors are never swallowed: each is logged with its key and
//     counted, and the read is served from Postgres with BYPASS. Set and
//     Tombstone return Redis's error to their caller (the Log settles the
//     change: applied, or announced to every process), and no read is
//     served from Redis while the Gate is closed, nor when it closed while
//     the read was under way.
//   - Entries that do not decode (unknown format, other encryption key,
//     tampering) are misses, counted, and replaced by the reader's lease
//     only while the key still holds the exact bytes that reader read: a
//     tombstone or a value written in between wins, so a deleted entity
//     is never brought back by a reader that raced its delete (see
//     docs/cache-aside.md, "Deleted analyses stay deleted").
//
// An Aside is safe for concurrent use.
type Aside struct {
	rdb      Client
	keys     Keys
	codec    *Codec
	metrics  *Metrics
	gate     *Gate
	resource Resource
	opt      AsideOptions
}

// AsideOptions configures an Aside. Zero durations take the contract's
// defaults (TTL 1h, NegativeTTL 30s, LeaseTTL 5s).
type AsideOptions struct {
	TTL         time.Duration // value lifetime (CACHE_TTL)
	NegativeTTL time.Duration // "not found" and tombstone lifetime (NEGATIVE_CACHE_TTL)
	LeaseTTL    time.Duration // how long a fill may take before another reader may fill
	Jitter      float64       // ±fraction applied to TTL and NegativeTTL (CACHE_TTL_JITTER)

	// AfterLoad is a test hook: it runs between the Postgres load and the
	// fill of a reader that holds the lease, to force a write in between.
	AfterLoad func(key string)
	// BeforeLease is a test hook: it runs between a reader's GET (a miss or
	// an undecodable entry) and its attempt to take the lease, to force a
	// write in between.
	BeforeLease func(key string)
}

// NewAside returns the Aside of resource's entries on b. b.Gate is shared
// with the other patterns of the process: while it is closed every read
// bypasses Redis.
func NewAside(b Backend, resource Resource, opt AsideOptions) *Aside {
	b = b.withDefaults()
	if opt.TTL <= 0 {
		opt.TTL = time.Hour
	}
	if opt.NegativeTTL <= 0 {
		opt.NegativeTTL = 30 * time.Second
	}
	if opt.LeaseTTL <= 0 {
		opt.LeaseTTL = 5 * time.Second
	}
	opt.Jitter = clampJitter(opt.Jitter)
	return &Aside{rdb: b.Redis, keys: b.Keys, codec: b.Codec, metrics: b.Metrics, gate: b.Gate, resource: resource, opt: opt}
}

// Key returns the physical key of the entry of id: "{prefix}{Kind}:{id}".
func (a *Aside) Key(id string) string { return a.keys.Entity(a.resource.Kind, id) }

// Resource returns the resource whose entries a holds.
func (a *Aside) Resource() Resource { return a.resource }

// setIfHolds writes ARGV[2] with PX ARGV[3] only while KEYS[1] still holds
// exactly ARGV[1]. It serves both compare-and-sets of a read: the fill
// (ARGV[1] our lease, token included: a write or delete in between wins)
// and the lease taken over undecodable bytes (ARGV[1] the bytes the reader
// read: a tombstone or a value written since that GET is never overwritten).
var setIfHolds = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0`)

// asideSetIfNewer is the write-through version guard: it writes entry
// ARGV[1] (version ARGV[2]) with PX ARGV[3] when the key is absent, holds a
// lease or an entry of another format, or holds an older version. At equal
// versions only two replacements happen. A tombstone (N) replaces a value
// (V or W): the delete of version n happened after the write of version n.
// A value (V) replaces a value written behind (W): the V is a row Postgres
// committed, the W only an accepted ingest that may still lose to that row.
// Bytes: 1 = format, 86 = 'V', 87 = 'W', 78 = 'N', 76 = 'L' (codec.go).
var asideSetIfNewer = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur and string.byte(cur, 1) == 1 and string.byte(cur, 2) ~= 76 then
  local curv = tonumber(string.match(cur, '^..(%d+):'))
  local newv = tonumber(ARGV[2])
  if curv then
    if curv > newv then return 0 end
    if curv == newv then
      local ck, nk = string.byte(cur, 2), string.byte(ARGV[1], 2)
      local curValue = ck == 86 or ck == 87
      if not ((curValue and nk == 78) or (ck == 87 and nk == 86)) then
        return 0
      end
    end
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
return 1`)

// Get returns the entry of id, loading it from Postgres on a miss.
//
// load returns the exact body and its version, or ErrNotFound (or an error
// wrapping it) for a definite miss, cached as a negative entry. Get
// answers: HIT from Redis (Pattern PatternWriteBehind for a value written
// behind, PatternAside otherwise); a HIT with ErrNotFound from a negative
// entry; MISS after a load (filled when this reader held the lease); BYPASS
// after a load when Redis failed. A load that fails returns the Result with
// its Status and load's error.
func (a *Aside) Get(ctx context.Context, id string, load func(ctx context.Context) (body []byte, version int64, err error)) (Result, error) {
	key := a.Key(id)
	epoch, open := a.gate.Admit()
	if !open {
		return a.loadOnly(ctx, load, Bypass)
	}
	raw, err := a.rdb.Get(ctx, key).Bytes()
	var undecodable []byte // the bytes to replace with our lease; nil: the key was absent
	switch {
	case err != nil && !errors.Is(err, redis.Nil):
		a.metrics.Error(ctx, a.resource.Kind, PatternAside, "get", key, err)
		return a.loadOnly(ctx, load, Bypass)
	case !a.gate.Still(epoch):
		// Redis answered after the gate closed: the answer may predate an
		// invalidation this process does not know to be applied.
		return a.loadOnly(ctx, load, Bypass)
	case errors.Is(err, redis.Nil):
	default:
		e, derr := a.codec.Decode(raw)
		if derr != nil {
			// Replaced with our lease only if still these exact bytes:
			// our load starts after it, and a write since our GET wins.
			a.metrics.Error(ctx, a.resource.Kind, PatternAside, "decode", key, derr)
			undecodable = raw
			break
		}
		switch e.Kind {
		case KindValue, KindWriteBehind:
			// A W entry is an ingested analysis, served from what its bulk wrote.
			pattern := PatternAside
			if e.Kind == KindWriteBehind {
				pattern = PatternWriteBehind
			}
			a.metrics.Lookup(a.resource.Kind, pattern, Hit)
			return Result{Body: e.Body, Version: e.Version, Status: Hit, Pattern: pattern}, nil
		case KindNegative:
			a.metrics.Lookup(a.resource.Kind, PatternAside, Hit)
			return Result{Status: Hit, Pattern: PatternAside}, ErrNotFound
		case KindLease:
			// Someone else is filling: serve from Postgres, leave the fill to them.
			return a.loadOnly(ctx, load, Miss)
		}
	}
	return a.fill(ctx, key, undecodable, load)
}

// fill takes the lease (SET NX on an absent key, or a compare-and-set on
// the undecodable bytes read), loads, and writes the entry if the lease
// survived.
func (a *Aside) fill(ctx context.Context, key string, undecodable []byte, load func(context.Context) ([]byte, int64, error)) (Result, error) {
	if a.opt.BeforeLease != nil {
		a.opt.BeforeLease(key)
	}
	lease := a.codec.Lease(newToken())
	var took bool
	var err error
	if undecodable != nil {
		took, err = setIfHolds.Run(ctx, a.rdb, []string{key}, undecodable, lease, a.opt.LeaseTTL.Milliseconds()).Bool()
	} else {
		took, err = a.rdb.SetNX(ctx, key, lease, a.opt.LeaseTTL).Result()
	}
	if err != nil {
		a.metrics.Error(ctx, a.resource.Kind, PatternAside, "lease", key, err)
		return a.loadOnly(ctx, load, Bypass)
	}
	if !took { // a writer or another reader got there between our GET and SET NX
		return a.loadOnly(ctx, load, Miss)
	}

	body, version, lerr := load(ctx)
	if a.opt.AfterLoad != nil {
		a.opt.AfterLoad(key)
	}
	// The fill must not be lost to a client that went away after the load.
	wctx := context.WithoutCancel(ctx)
	var entry []byte
	var ttl time.Duration
	switch {
	case lerr == nil:
		entry, ttl = a.codec.Value(version, body), spreadTTL(a.opt.TTL, a.opt.Jitter)
	case errors.Is(lerr, ErrNotFound):
		entry, ttl = a.codec.Negative(0), spreadTTL(a.opt.NegativeTTL, a.opt.Jitter)
	default:
		if rerr := deleteIfHolds.Run(wctx, a.rdb, []string{key}, lease).Err(); rerr != nil {
			a.metrics.Error(ctx, a.resource.Kind, PatternAside, "release", key, rerr)
		}
		a.metrics.Lookup(a.resource.Kind, PatternAside, Miss)
		return Result{Status: Miss, Pattern: PatternAside}, lerr
	}
	status := Miss
	if ferr := setIfHolds.Run(wctx, a.rdb, []string{key}, lease, entry, ttl.Milliseconds()).Err(); ferr != nil {
		a.metrics.Error(ctx, a.resource.Kind, PatternAside, "fill", key, ferr)
		status = Bypass
	}
	a.metrics.Lookup(a.resource.Kind, PatternAside, status)
	return Result{Body: body, Version: version, Status: status, Pattern: PatternAside}, lerr
}

// loadOnly serves a read from Postgres without touching Redis.
func (a *Aside) loadOnly(ctx context.Context, load func(context.Context) ([]byte, int64, error), status Status) (Result, error) {
	body, version, err := load(ctx)
	a.metrics.Lookup(a.resource.Kind, PatternAside, status)
	if err != nil {
		return Result{Status: status, Pattern: PatternAside}, err
	}
	return Result{Body: body, Version: version, Status: status, Pattern: PatternAside}, nil
}

// Set writes body at version to the entry of id through the version guard,
// after the write committed in Postgres, and returns Redis's error (the
// caller's Log settles the change either way).
func (a *Aside) Set(ctx context.Context, id string, version int64, body []byte) error {
	entry, ttl := a.entry(version, body, false)
	return a.guarded(ctx, PatternWriteThrough, "set", a.Key(id), entry, version, ttl)
}

// Tombstone marks the entry of id deleted at version (the entity's last
// version), through the same guard as Set, for NegativeTTL: a Set of that
// version or older that arrives later loses. It returns Redis's error.
func (a *Aside) Tombstone(ctx context.Context, id string, version int64) error {
	entry, ttl := a.entry(version, nil, true)
	return a.guarded(ctx, PatternWriteThrough, "tombstone", a.Key(id), entry, version, ttl)
}

// entry returns what a write-through of version writes and for how long:
// the sealed value for TTL, or a tombstone for NegativeTTL (±Jitter).
func (a *Aside) entry(version int64, body []byte, deleted bool) ([]byte, time.Duration) {
	if deleted {
		return a.codec.Negative(version), spreadTTL(a.opt.NegativeTTL, a.opt.Jitter)
	}
	return a.codec.Value(version, body), spreadTTL(a.opt.TTL, a.opt.Jitter)
}

// Replacement is one entry of ApplyMany: the row of ID stored now (Body
// and Version), or a tombstone at Version when Deleted.
type Replacement struct {
	ID      string
	Version int64
	Body    []byte
	Deleted bool
}

// ApplyMany writes each replacement through the same version guard as Set
// and Tombstone, all in one pipelined round trip (EVAL, so a Redis that just
// restarted and lost its scripts needs no second trip). It returns the
// first error; the replacements are idempotent and may be applied again.
func (a *Aside) ApplyMany(ctx context.Context, rs []Replacement) error {
	if len(rs) == 0 {
		return nil
	}
	cmds, err := a.rdb.Pipelined(context.WithoutCancel(ctx), func(p redis.Pipeliner) error {
		for _, r := range rs {
			entry, ttl := a.entry(r.Version, r.Body, r.Deleted)
			asideSetIfNewer.Eval(ctx, p, []string{a.Key(r.ID)}, entry, r.Version, ttl.Milliseconds())
		}
		return nil
	})
	if err == nil {
		return nil
	}
	key := a.Key(rs[0].ID)
	for i, c := range cmds {
		if c.Err() != nil {
			key = a.Key(rs[i].ID)
			break
		}
	}
	a.metrics.Error(ctx, a.resource.Kind, PatternWriteThrough, "apply_many", key, err)
	return fmt.Errorf("apply %d entries: %w", len(rs), err)
}

func (a *Aside) guarded(ctx context.Context, pattern, op, key string, entry []byte, version int64, ttl time.Duration) error {
	// The Postgres write committed: finish the cache write even if the client left.
	ctx = context.WithoutCancel(ctx)
	err := asideSetIfNewer.Run(ctx, a.rdb, []string{key}, entry, version, ttl.Milliseconds()).Err()
	if err != nil {
		a.metrics.Error(ctx, a.resource.Kind, pattern, op, key, err)
		return fmt.Errorf("%s %s: %w", op, key, err)
	}
	return nil
}
