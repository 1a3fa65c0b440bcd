package main

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/redis/go-redis/v9"

	"github.com/analysis-cache/service/internal/testenv"
	"github.com/analysis-cache/service/migrations"

	"github.com/analysis-cache/service/internal/scratch"
)

// The seeder writes the real schema: every generated row passes the
// table's constraints and reads back as written.
func TestCopyRowsFitsTheSchema(t *testing.T) {
	ctx := context.Background()
	d := migratedDatabase(t)

	gen := newRows()
	ids, _, err := d.copyRows(ctx, gen, 2000, "")
	if err != nil {
		t.Fatal(err)
	}
	if n, err := d.count(ctx); err != nil || n != 2000 {
		t.Fatalf("count = %d, %v; want 2000", n, err)
	}
	var title, status string
	var tags []string
	var score sql.NullFloat64
	if err := d.conn.QueryRow(ctx, "SELECT title, status, tags, score FROM analyses WHERE id = $1", ids[1]).
		Scan(&title, &status, &tags, &score); err != nil {
		t.Fatal(err)
	}
	if title != "Analysis 1" || status != "processing" || len(tags) != 2 || !score.Valid || score.Float64 != 0.001 {
		t.Errorf("row 1 = %q %q %v %v", title, status, tags, score)
	}
	var statuses int
	if err := d.conn.QueryRow(ctx, "SELECT count(DISTINCT status) FROM analyses").Scan(&statuses); err != nil || statuses != 4 {
		t.Errorf("distinct statuses = %d, %v; want 4", statuses, err)
	}
}

// migratedDatabase creates a bench database with the service's schema,
// connected, dropped when the test ends.
func migratedDatabase(t *testing.T) *database {
	t.Helper()
	ctx := context.Background()
	d, err := createDatabase(ctx, testenv.Get(t).DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.drop(context.Background()); err != nil {
			t.Error(err)
		}
	})
	cfg, err := pgx.ParseConfig(d.url)
	if err != nil {
		t.Fatal(err)
	}
	db := stdlib.OpenDB(*cfg)
	defer db.Close()
	if err := migrations.Up(ctx, db); err != nil {
		t.Fatal(err)
	}
	if err := d.connect(ctx); err != nil {
		t.Fatal(err)
	}
	return d
}

// drop removes the database it created, even with a connection still open.
func TestDropRemovesTheDatabase(t *testing.T) {
	ctx := context.Background()
	env := testenv.Get(t)
	d, err := createDatabase(ctx, env.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.connect(ctx); err != nil {
		t.Fatal(err)
	}
	if err := d.drop(ctx); err != nil {
		t.Fatal(err)
	}
	admin, err := pgx.Connect(ctx, env.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	var exists bool
	if err := admin.QueryRow(ctx, "SELECT exists(SELECT 1 FROM pg_database WHERE datname = $1)", d.name).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if exists {
		t.Errorf("database %s still exists after drop", d.name)
	}
}

// deletePrefix removes every key under the prefix and nothing else.
func TestDeletePrefixKeepsOtherKeys(t *testing.T) {
	ctx := context.Background()
	env := testenv.Get(t)
	opts, err := redis.ParseURL(env.RedisURL)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	prefix := env.RedisPrefix + "bench:" + randomHex(4) + ":"
	for i := range 2500 { // more than one UNLINK batch
		if err := rdb.Set(ctx, prefix+"k"+randomHex(4)+string(rune('a'+i%26)), "v", time.Minute).Err(); err != nil {
			t.Fatal(err)
		}
	}
	other := env.RedisPrefix + "bench-other"
	if err := rdb.Set(ctx, other, "v", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	defer rdb.Del(ctx, other)

	n, err := scratch.DeletePrefix(ctx, rdb, prefix)
	if err != nil {
		t.Fatal(err)
	}
	left, err := rdb.Keys(ctx, prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 || n < 2400 {
		t.Errorf("deleted %d, %d left under the prefix", n, len(left))
	}
	if rdb.Exists(ctx, other).Val() != 1 {
		t.Error("a key outside the prefix was deleted")
	}
}
