package cache

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Tags is tag-based invalidation: a cached entry belongs to one or more
// tags, each tag being a Redis set of the physical keys of its members
// ("tag:{tag}") plus a generation counter ("taggen:{tag}"). Its guarantees:
//
//   - A fill never resurrects data a tag invalidation removed: the filler
//     reads the generations of its tags before the database load and the
//     fill script (value and memberships written atomically, in one script)
//     aborts when any generation changed in between.
//   - A member is never lost: invalidation bumps the generation first, then
//     removes members in batches with SPOP, each batch UNLINKed in the same
//     script; a member added meanwhile is either popped and deleted by a
//     later batch or stays in the set, so a later invalidation finds it. A
//     value is never alive without being in its tag sets (until its TTL).
//   - A tag set lives at least as long as its longest-lived member: every
//     fill extends the set's TTL to the member's plus one second when the
//     set's is shorter (a new set, with no TTL yet, included).
//   - A tag set never grows without bound: a fill that finds a set at
//     MaxTagMembers first prunes a sample of members whose entries have
//     expired, and invalidates the tag instead of joining it only when the
//     set is still full of live members.
//   - Generation counters never go back: when missing (never written,
//     expired or evicted) they restart from the Redis clock in microseconds,
//     above any value they held before, so a filler that read a generation
//     before the counter vanished always sees it change. That is what lets
//     them carry a TTL (TagGenerationTTL) instead of living forever.
//
// Members are physical keys of the service's own prefix, written only by
// fills; deleting them never reaches outside CACHE_PREFIX. A Tags is safe for
// concurrent use.
type Tags struct {
	rdb     Client
	keys    Keys
	metrics *Metrics

	// betweenBatches is a test hook: it runs before each SPOP batch after
	// the first, to add a member while an invalidation is under way.
	betweenBatches func(tag string)
}

const (
	// MaxTagMembers caps a tag set; a fill that finds a set this large
	// invalidates the tag rather than growing it.
	MaxTagMembers = 10000
	// TagGenerationTTL is how long an untouched generation counter lives.
	// It only has to outlast the slowest fill (read generation → load →
	// fill); a counter that expires restarts above its old value anyway.
	TagGenerationTTL = 24 * time.Hour
	// tagBatch is how many members one SPOP removes: small enough that one
	// script never blocks Redis for long, large enough for few round trips.
	tagBatch = 500
)

// NewTags returns tag invalidation on b (only its Redis, Keys and Metrics
// are used).
func NewTags(b Backend) *Tags {
	b = b.withDefaults()
	return &Tags{rdb: b.Redis, keys: b.Keys, metrics: b.Metrics}
}

// luaCounters defines bump(key): INCR that, on a missing counter, first
// restarts it from the Redis clock in microseconds (TIME), so a counter
// that was lost never repeats a value a reader may still hold. It is shared
// by the namespace and tag scripts.
const luaCounters = `
local function clock()
  local t = redis.call('TIME')
  return t[1] .. string.format('%06d', tonumber(t[2]))
end
local function bump(key)
  if redis.call('EXISTS', key) == 0 then
    redis.call('SET', key, clock())
  end
  return redis.call('INCR', key)
end
`

// tagFill writes a value and its tag memberships atomically, unless a tag
// generation changed since the caller read it.
//
//	KEYS[1]            the value key
//	KEYS[2k], [2k+1]   set and generation of tag k
//	ARGV[1], [2], [3]  the entry, its TTL in ms, MaxTagMembers
//	ARGV[3+k]          generation of tag k read before the load ("0": missing)
//
// Returns 1 when written, 0 when a generation changed (aborted), -k when
// the set of tag k is full of live members even after pruning expired ones
// (nothing written; the caller invalidates tag k).
var tagFill = redis.NewScript(`
local n = (#KEYS - 1) / 2
for k = 1, n do
  if (redis.call('GET', KEYS[2*k+1]) or '0') ~= ARGV[3+k] then return 0 end
end
local cap = tonumber(ARGV[3])
for k = 1, n do
  if redis.call('SCARD', KEYS[2*k]) >= cap then
    -- A long-lived set (the "analyses" tag) fills up with members whose
    -- entries have expired. Prune a sample of those first (a key that no
    -- longer exists cannot be served stale), and give up on the tag only
    -- when it is still full of live members.
    for _, m in ipairs(redis.call('SRANDMEMBER', KEYS[2*k], 1000)) do
      if redis.call('EXISTS', m) == 0 then redis.call('SREM', KEYS[2*k], m) end
    end
    if redis.call('SCARD', KEYS[2*k]) >= cap then return -k end
  end
end
local ttl = tonumber(ARGV[2])
redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
-- The set outlives the member by a second, so that millisecond rounding
-- between SET PX and PEXPIRE can never expire the set first.
local want = ttl + 1000
for k = 1, n do
  redis.call('SADD', KEYS[2*k], KEYS[1])
  -- PTTL is -1 for a set without TTL (just created) and below want for a
  -- shorter-lived one: both are extended. (PEXPIRE GT would not do: it
  -- treats a key without TTL as infinite and leaves it so.)
  if redis.call('PTTL', KEYS[2*k]) < want then redis.call('PEXPIRE', KEYS[2*k], want) end
end
return 1`)

// tagInvalidate bumps counters, then pops and unlinks one batch of members
// of each tag.
//
//	KEYS[1..ARGV[3]]   namespace counters to bump (ListInvalidation), if any
//	then pairs         set and generation of each tag
//	ARGV[1], [2]       batch size, TagGenerationTTL in ms
//	ARGV[3]            how many namespace counters lead KEYS
//
// Returns, per tag, {members popped, keys deleted}; a tag whose popped
// count equals the batch size may have more members.
var tagInvalidate = redis.NewScript(luaCounters + `
local first = tonumber(ARGV[3])
for i = 1, first do bump(KEYS[i]) end
local out = {}
for i = first + 1, #KEYS, 2 do
  bump(KEYS[i+1])
  redis.call('PEXPIRE', KEYS[i+1], ARGV[2])
  local m = redis.call('SPOP', KEYS[i], ARGV[1])
  local d = 0
  if #m > 0 then d = redis.call('UNLINK', unpack(m)) end
  out[#out+1] = #m
  out[#out+1] = d
end
return out`)

// tagDrain pops and unlinks one more batch of members of KEYS[1] (batch
// size ARGV[1]), returning {members popped, keys deleted}. Popping and
// unlinking in one script means a crash between them cannot orphan a member.
var tagDrain = redis.NewScript(`
local m = redis.call('SPOP', KEYS[1], ARGV[1])
local d = 0
if #m > 0 then d = redis.call('UNLINK', unpack(m)) end
return {#m, d}`)

// Invalidate removes every member of each tag and returns how many of them
// still existed (the entries actually deleted). Generations are bumped
// before any member is removed, so a fill in flight aborts. On a Redis error
// it returns the error (a write's list invalidation goes through
// ListInvalidation instead, settled by the Log).
func (t *Tags) Invalidate(ctx context.Context, tags ...string) (int64, error) {
	return t.invalidate(ctx, nil, tags)
}

// invalidateAfterWrite runs invalidate(nsKeys, tags) for a write that
// has committed, detached from its caller (a client hanging up must not
// leave the lists stale in other processes). A Redis failure is counted
// under resource, pattern and op and returned: the caller's Log settles the
// change.
func (t *Tags) invalidateAfterWrite(ctx context.Context, resource, pattern, op, key string, nsKeys, tags []string) error {
	ctx = context.WithoutCancel(ctx)
	if _, err := t.invalidate(ctx, nsKeys, tags); err != nil {
		t.metrics.Error(ctx, resource, pattern, op, key, err)
		return err
	}
	return nil
}

// invalidate bumps the counters nsKeys (physical), then empties each tag,
// in one script call for the common case (sets under one batch) and one
// more call per further batch of a large tag.
func (t *Tags) invalidate(ctx context.Context, nsKeys []string, tags []string) (int64, error) {
	if len(nsKeys) == 0 && len(tags) == 0 {
		return 0, nil
	}
	keys := make([]string, 0, len(nsKeys)+2*len(tags))
	keys = append(keys, nsKeys...)
	for _, tag := range tags {
		keys = append(keys, t.keys.Tag(tag), t.keys.TagGeneration(tag))
	}
	res, err := tagInvalidate.Run(ctx, t.rdb, keys, tagBatch, TagGenerationTTL.Milliseconds(), len(nsKeys)).Int64Slice()
	if err != nil {
		return 0, fmt.Errorf("invalidate tags: %w", err)
	}
	var deleted int64
	for i, tag := range tags {
		popped, d := res[2*i], res[2*i+1]
		deleted += d
		if popped < tagBatch {
			continue
		}
		n, err := t.drain(ctx, tag)
		deleted += n
		if err != nil {
			return deleted, err
		}
	}
	return deleted, nil
}

// drain pops batches of tag until the set is empty. Members added while it
// runs are popped too (or, when added after the last batch, stay members).
// It returns the keys it deleted.
func (t *Tags) drain(ctx context.Context, tag string) (int64, error) {
	key := t.keys.Tag(tag)
	var deleted int64
	for {
		if t.betweenBatches != nil {
			t.betweenBatches(tag)
		}
		res, err := tagDrain.Run(ctx, t.rdb, []string{key}, tagBatch).Int64Slice()
		if err != nil {
			return deleted, fmt.Errorf("drain tag %s: %w", tag, err)
		}
		deleted += res[1]
		if res[0] < tagBatch {
			return deleted, nil
		}
	}
}

// generationArgs turns GET replies of generation counters into the strings
// tagFill compares: the value, or "0" for a missing counter.
func generationArgs(vals []any) []string {
	out := make([]string, len(vals))
	for i, v := range vals {
		s, ok := v.(string)
		if !ok {
			s = "0"
		}
		out[i] = s
	}
	return out
}

// fill writes entry under key with ttl and adds it to tags, unless a
// generation differs from gens (read before the load). It reports whether
// the entry was written. A full tag set is invalidated instead.
func (t *Tags) fill(ctx context.Context, key string, entry []byte, ttl time.Duration, tags, gens []string) (bool, error) {
	keys := make([]string, 0, 1+2*len(tags))
	keys = append(keys, key)
	args := make([]any, 0, 3+len(gens))
	args = append(args, entry, ttl.Milliseconds(), MaxTagMembers)
	for i, tag := range tags {
		keys = append(keys, t.keys.Tag(tag), t.keys.TagGeneration(tag))
		args = append(args, gens[i])
	}
	r, err := tagFill.Run(ctx, t.rdb, keys, args...).Int64()
	if err != nil {
		return false, fmt.Errorf("fill %s: %w", key, err)
	}
	if r < 0 {
		full := tags[-r-1]
		if _, err := t.Invalidate(ctx, full); err != nil {
			return false, fmt.Errorf("invalidate full tag %s: %w", full, err)
		}
	}
	return r == 1, nil
}
