package testenv

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
)

func TestMain(m *testing.M) { os.Exit(Run(m)) }

func TestEnvIsPrivate(t *testing.T) {
	env := Get(t)
	conn, err := pgx.Connect(context.Background(), env.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var db string
	if err := conn.QueryRow(context.Background(), "select current_database()").Scan(&db); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(db, "t_") {
		t.Fatalf("database %q is not a private test database", db)
	}
	opt, err := redis.ParseURL(env.RedisURL)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opt)
	defer c.Close()
	if err := c.Ping(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(env.RedisPrefix, "test:") {
		t.Fatalf("prefix %q", env.RedisPrefix)
	}
}

func TestImageOverride(t *testing.T) {
	t.Setenv("X_IMG", "mirror.local:5000/lib/postgres:15")
	if got := image("X_IMG", "postgres"); got != "mirror.local:5000/lib/postgres" {
		t.Fatal(got)
	}
	if got := imageTag("X_IMG", "15-alpine"); got != "15" {
		t.Fatal(got)
	}
}
