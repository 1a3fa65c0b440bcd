package cache

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// errLockLost is the cause of a computation's context when its lease could
// not be extended: another process may hold the lock now, so the holder
// abandons the computation instead of racing it.
var errLockLost = errors.New("stampede lock lost")

// extendLock renews the lease only while the lock still holds the caller's
// token. KEYS[1] = lock; ARGV[1] = token; ARGV[2] = PX.
var extendLock = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
`)

// distLock is one lock key in Redis: SET NX PX with a random token.
// Safety rests on the token: only the process that wrote it may extend or
// delete the key, and the key expires on its own when that process dies.
type distLock struct {
	rdb Client
	key string
	ttl time.Duration

	// report receives every Redis error of keepAlive (logged and counted by
	// the guard); a failed extension is retried until the lease may have lapsed.
	report func(error)
	// beforeExtend is a test seam called before each extension; nil in production.
	beforeExtend func()
}

// acquire tries once to take the lock. It returns the token on success,
// "" when another process holds it, and err on a Redis failure.
func (l distLock) acquire(ctx context.Context) (token string, err error) {
	token = newToken()
	ok, err := l.rdb.SetNX(ctx, l.key, token, l.ttl).Result()
	if err != nil {
		return "", fmt.Errorf("acquire %s: %w", l.key, err)
	}
	if !ok {
		return "", nil
	}
	return token, nil
}

// extend renews the lease. held is false when the lock is no longer ours.
func (l distLock) extend(ctx context.Context, token string) (held bool, err error) {
	n, err := extendLock.Run(ctx, l.rdb, []string{l.key}, token, l.ttl.Milliseconds()).Int()
	if err != nil {
		return false, fmt.Errorf("extend %s: %w", l.key, err)
	}
	return n == 1, nil
}

// release deletes the lock if it is still ours. released is false when it
// had expired or belongs to another holder (which it then keeps).
func (l distLock) release(ctx context.Context, token string) (released bool, err error) {
	n, err := deleteIfHolds.Run(ctx, l.rdb, []string{l.key}, token).Int()
	if err != nil {
		return false, fmt.Errorf("release %s: %w", l.key, err)
	}
	return n == 1, nil
}

// remaining returns the lock's remaining lease; 0 when there is no lock.
func (l distLock) remaining(ctx context.Context) (time.Duration, error) {
	d, err := l.rdb.PTTL(ctx, l.key).Result()
	if err != nil {
		return 0, fmt.Errorf("pttl %s: %w", l.key, err)
	}
	if d < 0 {
		// -2: no key. -1 (no TTL) cannot happen for a lock written with PX;
		// treat it as free rather than waiting on it forever.
		return 0, nil
	}
	return d, nil
}

// keepAlive extends the lease every ttl/3 until stop is called. When the
// lock turns out to belong to someone else, or no extension has succeeded
// for a whole lease counted from acquiredAt (Redis unreachable: the lease
// may have lapsed), it cancels the computation with errLockLost.
func (l distLock) keepAlive(ctx context.Context, token string, acquiredAt time.Time, abandon context.CancelCauseFunc) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(l.ttl / 3)
		defer tick.Stop()
		// The lease runs from when the last successful command was sent,
		// which is never later than when Redis applied it.
		lastHeld := acquiredAt
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			if l.beforeExtend != nil {
				l.beforeExtend()
			}
			sent := time.Now()
			held, err := l.extend(ctx, token)
			switch {
			case err != nil:
				l.report(err)
				if time.Since(lastHeld) >= l.ttl {
					abandon(errLockLost)
					return
				}
			case !held:
				abandon(errLockLost)
				return
			default:
				lastHeld = sent
			}
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}
