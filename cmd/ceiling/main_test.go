package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/redis/go-redis/v9"

	"github.com/analysis-cache/service/internal/testenv"
	"github.com/analysis-cache/service/migrations"
)

// TestMain gives package main (cmd/ceiling) its private database and Redis key prefix.
func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }

// PATCH /write/:id does the whole write ceiling: the row is updated (title,
// status, version bumped) in Postgres, the answer is the updated row, and
// the same JSON is SET under the ceiling's own key, never the service's.
func TestWriteUpdatesTheRowAndSetsItsOwnEntry(t *testing.T) {
	ctx := context.Background()
	env := testenv.Get(t)
	cfg, err := pgx.ParseConfig(env.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	db := stdlib.OpenDB(*cfg)
	defer db.Close()
	if err := migrations.Up(ctx, db); err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.New(ctx, env.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	opts, err := redis.ParseURL(env.RedisURL)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	prefix := env.UniquePrefix("ceiling")

	id := uuid.New()
	if _, err := pool.Exec(ctx, `INSERT INTO analyses (id, owner_id, url, title, status, tags, version, created_at, updated_at)
		VALUES ($1, $2, 'https://example.com/a', 'old', 'pending', '{t1}', 1, now(), now())`, id, uuid.New()); err != nil {
		t.Fatal(err)
	}
	w := &writer{pool: pool, rdb: rdb, prefix: prefix + writePrefix}
	srv := httptest.NewServer(routes(nil, rdb, prefix, w))
	defer srv.Close()

	patch := func(id uuid.UUID) (*http.Response, []byte) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPatch, srv.URL+"/write/"+id.String(),
			bytes.NewReader([]byte(`{"title":"new","status":"completed"}`)))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var buf bytes.Buffer
		buf.ReadFrom(resp.Body)
		return resp, buf.Bytes()
	}
	resp, body := patch(id)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	var got analysis
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	if got.ID != id || got.Title != "new" || got.Status != "completed" || got.Version != 2 || got.URL != "https://example.com/a" {
		t.Errorf("answer = %+v", got)
	}
	var title, status string
	var version int64
	if err := pool.QueryRow(ctx, "SELECT title, status, version FROM analyses WHERE id = $1", id).Scan(&title, &status, &version); err != nil {
		t.Fatal(err)
	}
	if title != "new" || status != "completed" || version != 2 {
		t.Errorf("row = %q %q v%d, want new completed v2", title, status, version)
	}
	entry, err := rdb.Get(ctx, prefix+writePrefix+id.String()).Bytes()
	if err != nil {
		t.Fatalf("the ceiling's entry: %v", err)
	}
	if !bytes.Equal(entry, body) {
		t.Errorf("entry %s\nanswer %s", entry, body)
	}
	if ttl := rdb.TTL(ctx, prefix+writePrefix+id.String()).Val(); ttl <= 0 || ttl > time.Hour {
		t.Errorf("entry TTL = %s", ttl)
	}
	if n := rdb.Exists(ctx, prefix+"analysis:"+id.String()).Val(); n != 0 {
		t.Error("the ceiling wrote the service's own entry")
	}

	if resp, body := patch(uuid.New()); resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown id: status %d: %s", resp.StatusCode, body)
	}
}
