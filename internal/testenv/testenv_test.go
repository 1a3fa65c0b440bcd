package testenv

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
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

// crashEnv makes TestCrashingChild (run as a child process) report its
// database and prefix, then panic in a goroutine.
const crashEnv = "TESTENV_CRASH_CHILD"

// TestCrashingChild is the child of TestSweepCollectsACrashedRun: a test
// whose goroutine panics, which ends the process without testenv's cleanup.
func TestCrashingChild(t *testing.T) {
	if os.Getenv(crashEnv) == "" {
		t.Skip("run as a child by TestSweepCollectsACrashedRun")
	}
	env := Get(t)
	c := redis.NewClient(mustRedisOptions(t, env.RedisURL))
	if err := c.Set(context.Background(), env.RedisPrefix+"k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(env.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("CRASH db=%s prefix=%s\n", strings.TrimPrefix(u.Path, "/"), env.RedisPrefix)
	if sources.owner != "" {
		fmt.Printf("CRASH-OWNER %s\n", sources.owner)
	}
	done := make(chan struct{})
	go func() { panic("a test goroutine panics") }()
	<-done
}

// A run that crashed leaves its database and keys (with no TTL) behind;
// the next Run's sweep drops them, and leaves this live run's alone.
func TestSweepCollectsACrashedRun(t *testing.T) {
	env := Get(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashingChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnv+"=1")
	out, err := cmd.Output()
	if err == nil {
		t.Fatalf("the child did not crash: %s", out)
	}
	var db, prefix string
	for _, line := range strings.Split(string(out), "\n") {
		if rest, ok := strings.CutPrefix(line, "CRASH "); ok {
			if _, err := fmt.Sscanf(rest, "db=%s prefix=%s", &db, &prefix); err != nil {
				t.Fatalf("child said %q: %v", line, err)
			}
		}
	}
	if db == "" {
		t.Fatalf("the child never reported its env: %s", out)
	}
	ctx := context.Background()
	server := sources.dbServer
	if sources.db == fromDocker {
		t.Skip("the child's Postgres was a container of its own, gone with it")
	}
	conn, err := pgx.Connect(ctx, server)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	exists := func(name string) bool {
		var n int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_database WHERE datname = $1", name).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == 1
	}
	c := redis.NewClient(mustRedisOptions(t, env.RedisURL))
	defer c.Close()
	if !exists(db) || c.Exists(ctx, prefix+"k").Val() != 1 {
		t.Fatalf("the crashed child left nothing behind (db %s, prefix %s): the test proves nothing", db, prefix)
	}

	sweepLeftovers(server, env.RedisURL)

	if exists(db) {
		t.Errorf("the crashed run's database %s survived the sweep", db)
	}
	if c.Exists(ctx, prefix+"k").Val() != 0 {
		t.Errorf("the crashed run's keys under %s survived the sweep", prefix)
	}
	own := strings.TrimPrefix(mustURL(t, env.DatabaseURL).Path, "/")
	if !exists(own) {
		t.Errorf("the sweep dropped this live run's database %s", own)
	}
}

func mustRedisOptions(t *testing.T, u string) *redis.Options {
	t.Helper()
	opt, err := redis.ParseURL(u)
	if err != nil {
		t.Fatal(err)
	}
	return opt
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
