package migrations

import (
	"context"
	"database/sql"
	"errors"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	"github.com/pressly/goose/v3"

	"github.com/analysis-cache/service/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }

// freshDatabase creates an empty database next to the package's one and
// drops it when t ends, so each test sees a server with no schema.
func freshDatabase(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	env := testenv.Get(t)
	admin, err := sql.Open("pgx", env.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	u, err := url.Parse(env.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	raw := strings.ToLower(u.Path[1:] + "_" + sanitize(t.Name()))
	name := pgx.Identifier{raw[:min(len(raw), 63)]}.Sanitize()
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		c, err := sql.Open("pgx", env.DatabaseURL)
		if err == nil {
			_, _ = c.ExecContext(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			_ = c.Close()
		}
	})
	u.Path = "/" + raw[:min(len(raw), 63)]
	return u.String()
}

func sanitize(s string) string {
	out := []byte(s)
	for i, c := range out {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			out[i] = '_'
		}
	}
	return string(out)
}

// TestUpConcurrent starts several migrators at once on an empty database.
// The advisory lock makes exactly one apply version 1 and the others find
// nothing to do; without it they race on CREATE TABLE and fail.
func TestUpConcurrent(t *testing.T) {
	dsn := freshDatabase(t)
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			db, err := sql.Open("pgx", dsn)
			if err != nil {
				errs[i] = err
				return
			}
			defer db.Close()
			db.SetMaxIdleConns(4)
			// Connect before the barrier so the migrators really overlap.
			if errs[i] = db.Ping(); errs[i] != nil {
				return
			}
			<-start
			errs[i] = Up(context.Background(), db)
		})
	}
	close(start)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("concurrent Up: %v", err)
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var applied int
	if err := db.QueryRow("SELECT count(*) FROM goose_db_version WHERE version_id = 1 AND is_applied").Scan(&applied); err != nil {
		t.Fatal(err)
	}
	if applied != 1 {
		t.Fatalf("version 1 recorded %d times, want once", applied)
	}
	// Idempotent: a later Up does nothing and succeeds.
	if err := Up(context.Background(), db); err != nil {
		t.Fatalf("second Up: %v", err)
	}
}

// migratedDatabase returns a fresh database with every migration applied,
// closed when the test ends.
func migratedDatabase(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", freshDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if err := Up(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	return db
}

// TestSchema checks the constraints the contract relies on, and that Down
// undoes Up.
func TestSchema(t *testing.T) {
	ctx := context.Background()
	db := migratedDatabase(t)
	insert := `INSERT INTO analyses (id, owner_id, url, title, status, score, version, created_at, updated_at)
		VALUES (gen_random_uuid(), gen_random_uuid(), 'https://x', 't', $1, $2, $3, now(), now())`
	if _, err := db.ExecContext(ctx, insert, "pending", 0.5, 1); err != nil {
		t.Fatalf("valid row: %v", err)
	}
	var tags string
	if err := db.QueryRowContext(ctx, "SELECT tags::text FROM analyses").Scan(&tags); err != nil || tags != "{}" {
		t.Fatalf("tags default %q, %v; want {}", tags, err)
	}
	for name, args := range map[string][]any{
		"unknown status": {"done", 0.5, 1},
		"score above 1":  {"pending", 1.5, 1},
		"score below 0":  {"pending", -0.1, 1},
		"version 0":      {"pending", 0.5, 0},
	} {
		if _, err := db.ExecContext(ctx, insert, args...); err == nil {
			t.Errorf("%s: accepted, want a CHECK violation", name)
		}
	}

	provider, err := goose.NewProvider(goose.DialectPostgres, db, files)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := provider.DownTo(ctx, 0); err != nil {
		t.Fatalf("down: %v", err)
	}
	var exists bool
	if err := db.QueryRowContext(ctx, "SELECT to_regclass('analyses') IS NOT NULL").Scan(&exists); err != nil || exists {
		t.Fatalf("analyses exists after Down: %v %v", exists, err)
	}
	if err := Up(ctx, db); err != nil {
		t.Fatalf("Up after Down: %v", err)
	}
}
