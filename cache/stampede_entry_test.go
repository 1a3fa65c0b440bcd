package cache

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/analysis-cache/service/internal/testenv"
)

func TestComputedEntryRoundTrip(t *testing.T) {
	e := computedEntry{
		ComputedAt: time.Date(2026, 11, 26, 10, 20, 30, 123456000, time.UTC),
		Delta:      1234567 * time.Microsecond,
		SoftExpiry: time.Date(2026, 11, 26, 10, 21, 31, 0, time.UTC),
		Body:       []byte(`{"total":3,"x":"a:b"}`),
	}
	got, err := decodeComputed(e.encode(nil))
	if err != nil {
		t.Fatal(err)
	}
	if !got.ComputedAt.Equal(e.ComputedAt) || got.Delta != e.Delta || !got.SoftExpiry.Equal(e.SoftExpiry) || string(got.Body) != string(e.Body) {
		t.Fatalf("round trip = %+v, want %+v", got, e)
	}
	for _, raw := range []string{"", "\x01", "\x02S1:2:3:x", "\x01V1:2:3:x", "\x01S1:2:x", "\x01Sa:2:3:x", "\x01S-1:2:3:x"} {
		if _, err := decodeComputed([]byte(raw)); !errors.Is(err, ErrUndecodable) {
			t.Errorf("decode %q: err = %v, want ErrUndecodable", raw, err)
		}
	}
}

// The store script never replaces a value with one whose computation
// started earlier, and overwrites what it cannot read.
func TestStoreComputedOnlyMovesForward(t *testing.T) {
	env := testenv.Get(t)
	opt, _ := redis.ParseURL(env.RedisURL)
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	ctx := context.Background()
	key := Keys{Prefix: env.RedisPrefix}.Stampede("stats:store-forward")
	t0 := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	store := func(at time.Time, body string) int {
		e := computedEntry{ComputedAt: at, SoftExpiry: at.Add(time.Minute), Body: []byte(body)}
		n, err := storeComputed.Run(ctx, rdb, []string{key}, e.encode(nil), 60000).Int()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if err := rdb.Set(ctx, key, "garbage", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	if store(t0, "old") != 1 {
		t.Fatal("an undecodable entry was not overwritten")
	}
	if store(t0.Add(time.Second), "new") != 1 {
		t.Fatal("a newer computation was not stored")
	}
	if store(t0, "old") != 0 {
		t.Fatal("an older computation replaced a newer one")
	}
	e, found, err := readComputed(ctx, rdb, key)
	if err != nil || !found || string(e.Body) != "new" {
		t.Fatalf("stored %q (%v, %v), want new", e.Body, found, err)
	}
	if ttl := rdb.PTTL(ctx, key).Val(); ttl <= 0 {
		t.Fatalf("PTTL = %v, every write must have a TTL", ttl)
	}
}
