package cache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// KindComputed marks the entry of a StampedeGuard computation. Its layout
// follows the one entry format of docs/design.md, with three header numbers
// instead of one:
//
//	[format byte 0x01]['S']{computed_at µs}:{δ µs}:{soft expiry µs}:{body}
//
// computed_at is when the computation started (the moment its data
// reflects), δ how long it took, soft expiry when readers start to get
// STALE. The body is stored in plain text: stats hold no sensitive field.
// The header is text so the store script can compare computed_at with
// tonumber (microseconds since 1970 stay below 2^53, exact in a Lua double).
const KindComputed byte = 'S'

// computedEntry is a decoded KindComputed entry.
type computedEntry struct {
	ComputedAt time.Time     // start of the computation
	Delta      time.Duration // how long the computation took (XFetch's δ)
	SoftExpiry time.Time     // after it: served STALE while one refresh runs
	Body       []byte
}

// encode appends the entry in the KindComputed layout to buf.
func (e computedEntry) encode(buf []byte) []byte {
	buf = append(buf, formatV1, KindComputed)
	buf = strconv.AppendInt(buf, e.ComputedAt.UnixMicro(), 10)
	buf = append(buf, ':')
	buf = strconv.AppendInt(buf, e.Delta.Microseconds(), 10)
	buf = append(buf, ':')
	buf = strconv.AppendInt(buf, e.SoftExpiry.UnixMicro(), 10)
	buf = append(buf, ':')
	return append(buf, e.Body...)
}

// decodeComputed parses a KindComputed entry. Anything else (another format
// byte, another kind, a malformed header) wraps ErrUndecodable and is a miss.
// Body aliases raw.
func decodeComputed(raw []byte) (computedEntry, error) {
	if len(raw) < 2 || raw[0] != formatV1 || raw[1] != KindComputed {
		return computedEntry{}, fmt.Errorf("%w: not a computed entry", ErrUndecodable)
	}
	rest := raw[2:]
	var nums [3]int64
	for i := range nums {
		end := bytes.IndexByte(rest, ':')
		if end < 0 {
			return computedEntry{}, fmt.Errorf("%w: computed entry header", ErrUndecodable)
		}
		n, err := strconv.ParseInt(string(rest[:end]), 10, 64)
		if err != nil || n < 0 {
			return computedEntry{}, fmt.Errorf("%w: computed entry header", ErrUndecodable)
		}
		nums[i], rest = n, rest[end+1:]
	}
	return computedEntry{
		ComputedAt: time.UnixMicro(nums[0]),
		Delta:      time.Duration(nums[1]) * time.Microsecond,
		SoftExpiry: time.UnixMicro(nums[2]),
		Body:       rest,
	}, nil
}

// storeComputed writes a computed entry unless the key already holds one
// that started later: two computations that overlap (a holder that lost its
// lease, a waiter that gave up waiting) can finish in any order, and the
// value must never go back to an older snapshot. Undecodable entries are
// overwritten. KEYS[1] = value key; ARGV[1] = entry; ARGV[2] = PX.
// Returns 1 when written, 0 when a newer entry was kept.
var storeComputed = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur and string.byte(cur, 1) == 1 and string.byte(cur, 2) == 83 then
  local have = tonumber(string.match(cur, '^..(%d+):'))
  local new = tonumber(string.match(ARGV[1], '^..(%d+):'))
  if have and new and have > new then
    return 0
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
`)

// readComputed GETs and decodes the entry at key. found is false for an
// absent or undecodable entry; err is a Redis failure only.
func readComputed(ctx context.Context, rdb Client, key string) (e computedEntry, found bool, err error) {
	raw, err := rdb.Get(ctx, key).Bytes()
	if errors.Is(err, redis.Nil) {
		return computedEntry{}, false, nil
	}
	if err != nil {
		return computedEntry{}, false, err
	}
	e, err = decodeComputed(raw)
	if err != nil {
		return computedEntry{}, false, nil
	}
	return e, true, nil
}
