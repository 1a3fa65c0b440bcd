package cache

import "github.com/redis/go-redis/v9"

// The Lua scripts of write-behind. Each runs atomically in Redis, which is
// what makes the guarantees of writebehind.go hold across processes. Bytes:
// 1 = format byte, 86 = 'V', 87 = 'W', 78 = 'N', 76 = 'L' (codec.go). A
// real value is V (a committed row) or W (a value written behind); both
// are treated alike here.

// wbEnqueue caches and appends n entities, or nothing when the backlog is full.
//
// KEYS[1] = stream, KEYS[1+i] = cache key of item i.
// ARGV[1] = max pending; then per item i: id, sealed entry, TTL in ms,
// cache mode (wbCache "W", wbUnverified "U", wbExists "E"; writebehind.go).
// Returns n, or -1 when XLEN + n > max pending (nothing written).
// The check and the appends are one atomic step, so concurrent ingests
// cannot overshoot the limit together.
var wbEnqueue = redis.NewScript(`
local n = #KEYS - 1
if redis.call('XLEN', KEYS[1]) + n > tonumber(ARGV[1]) then
  return -1
end
for i = 1, n do
  local b = 4 * i - 2
  local key, v, mode = KEYS[i + 1], ARGV[b + 1], ARGV[b + 3]
  if mode ~= 'E' then
    local cur = redis.call('GET', key)
    -- Never overwrite a real value (V, or W of an earlier ingest): an
    -- existing id keeps its cached row.
    local kind = cur and string.byte(cur, 1) == 1 and string.byte(cur, 2)
    if not (kind == 86 or kind == 87) then
      if mode == 'W' then
        redis.call('SET', key, v, 'PX', ARGV[b + 2])
      elseif cur then
        -- The id may exist: no W, and no stale "not found" either.
        redis.call('UNLINK', key)
      end
    end
  end
  redis.call('XADD', KEYS[1], '*', 'id', ARGV[b], 'v', v)
end
return n`)

// wbSettle acknowledges committed entries, deletes them from the stream and
// makes the cache agree with what the store now holds.
//
// KEYS[1] = stream, KEYS[1+i] = cache key of entry i.
// ARGV[1] = group; then per entry i: stream id, "1" if this flush inserted
// the row (else "0": another row won or it already existed), sealed entry.
// Returns how many entries this call acknowledged.
//
// The cache is settled only for entries whose XACK returned 1: a copy of the
// batch flushed by someone else earlier was already settled by them, with
// the knowledge of who inserted the row.
var wbSettle = redis.NewScript(`
local acked = 0
local sids = {}
for i = 1, #KEYS - 1 do
  local b = 3 * i - 1
  local sid, inserted, v, key = ARGV[b], ARGV[b + 1], ARGV[b + 2], KEYS[i + 1]
  if redis.call('XACK', KEYS[1], ARGV[1], sid) == 1 then
    acked = acked + 1
    local cur = redis.call('GET', key)
    if cur and cur ~= v then
      if inserted == '1' then
        -- The row is exactly v, at v's version. Keep a later write (V or W
        -- of a higher version) or a delete's tombstone (N of v's version or
        -- higher, never N0); drop a stale "not found", a lease whose fill
        -- may have loaded before the commit, another ingest's value for
        -- this id, or an entry of another format. (cur == v, our own W,
        -- stays: it is now the row the store holds.)
        local kind = string.byte(cur, 2)
        local ver = tonumber(string.match(cur, '^..(%d+):') or '0')
        local mine = tonumber(string.match(v, '^..(%d+):') or '0')
        local value = kind == 86 or kind == 87
        local keep = string.byte(cur, 1) == 1 and ((value and ver > mine) or (kind == 78 and ver >= math.max(mine, 1)))
        if not keep then redis.call('UNLINK', key) end
      end
    elseif cur and inserted ~= '1' then
      -- Our value lost to an existing row: the cache must not answer with it.
      redis.call('UNLINK', key)
    end
  end
  sids[i] = sid
end
-- One XDEL per 1000 ids instead of one per entry: 0.9 µs per id instead of
-- 2.3 µs, the costliest call of the loop. 1000 stays far below the number
-- of values unpack may return.
for j = 1, #sids, 1000 do
  redis.call('XDEL', KEYS[1], unpack(sids, j, math.min(j + 999, #sids)))
end
return acked`)

// wbDeadLetter moves one entry to the dead-letter stream.
//
// KEYS[1] = stream, KEYS[2] = dead-letter stream, KEYS[3] (optional) = the
// entry's cache key. ARGV = group, stream id, id, entry, error, attempts, consumer.
// Returns 1 when this call moved it, 0 when another flusher already
// handled it. The copy, the XACK and the XDEL are one atomic step, so an
// entry is never in neither stream. The cached value it wrote (a row that
// will never exist) is unlinked.
var wbDeadLetter = redis.NewScript(`
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 then
  return 0
end
redis.call('XADD', KEYS[2], '*', 'stream_id', ARGV[2], 'id', ARGV[3], 'v', ARGV[4],
  'error', ARGV[5], 'attempts', ARGV[6], 'consumer', ARGV[7])
if KEYS[3] and ARGV[4] ~= '' and redis.call('GET', KEYS[3]) == ARGV[4] then
  redis.call('UNLINK', KEYS[3])
end
redis.call('XDEL', KEYS[1], ARGV[2])
return 1`)

// wbReapConsumers deletes consumers of the group that own no pending entry
// and were idle longer than ARGV[2] ms, but never ARGV[3] (the caller).
// Consumers are named per process, so without this every restart would
// leave one behind. Checking and deleting in one script means a consumer
// cannot receive an entry in between (DELCONSUMER drops its pending entries).
//
// KEYS[1] = stream. ARGV = group, idle ms, own consumer name. Returns the count.
var wbReapConsumers = redis.NewScript(`
local removed = 0
for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
  local f = {}
  for j = 1, #c, 2 do f[c[j]] = c[j + 1] end
  if f['pending'] == 0 and f['idle'] > tonumber(ARGV[2]) and f['name'] ~= ARGV[3] then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], f['name'])
    removed = removed + 1
  end
end
return removed`)
