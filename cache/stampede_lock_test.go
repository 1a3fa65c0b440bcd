package cache

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/analysis-cache/service/internal/testenv"
)

// Only the token's owner may extend or release the lock; one holder at a time.
func TestDistLockOwnership(t *testing.T) {
	env := testenv.Get(t)
	opt, _ := redis.ParseURL(env.RedisURL)
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	ctx := context.Background()
	l := distLock{rdb: rdb, key: Keys{Prefix: env.RedisPrefix}.Lock("stats:lock-ownership"), ttl: time.Minute}

	a, err := l.acquire(ctx)
	if err != nil || a == "" {
		t.Fatalf("first acquire: %q %v", a, err)
	}
	if b, err := l.acquire(ctx); err != nil || b != "" {
		t.Fatalf("second acquire while held: %q %v, want refused", b, err)
	}
	if held, err := l.extend(ctx, "not-the-owner"); err != nil || held {
		t.Fatalf("extend by a stranger: held=%v %v", held, err)
	}
	if ok, err := l.release(ctx, "not-the-owner"); err != nil || ok {
		t.Fatalf("release by a stranger: %v %v", ok, err)
	}
	if got := rdb.Get(ctx, l.key).Val(); got != a {
		t.Fatalf("lock = %q after a stranger's release, want %q", got, a)
	}
	if held, err := l.extend(ctx, a); err != nil || !held {
		t.Fatalf("extend by the owner: held=%v %v", held, err)
	}
	if ok, err := l.release(ctx, a); err != nil || !ok {
		t.Fatalf("release by the owner: %v %v", ok, err)
	}
	if d, err := l.remaining(ctx); err != nil || d != 0 {
		t.Fatalf("remaining after release = %v %v, want 0", d, err)
	}
}
