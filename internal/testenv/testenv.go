// Package testenv gives each integration-test package its own Postgres
// database and its own Redis key prefix, so packages can run in parallel
// against one server.
//
// Servers come from TEST_DATABASE_URL and TEST_REDIS_URL when they are set
// (make test sets them to the local services); otherwise Run starts
// containers with dockertest (images overridable with TEST_POSTGRES_IMAGE and
// TEST_REDIS_IMAGE for mirrors). When neither is possible the package fails
// with a message saying how to provide a server. Containers are purged when
// the package ends, whether its tests passed, failed or panicked.
//
// Use it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }
//
// and in a test: env := testenv.Get(t).
//
// Database and prefix names carry a scratch.Stamp (creation time, pid,
// host). A run that crashed before its cleanup (a panic in a test goroutine
// skips it) leaves them behind; the next Run on any package drops the
// leftovers first: those of a process of this host that no longer exists,
// and any older than LeftoverAge.
package testenv

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/ory/dockertest/v3"
	"github.com/redis/go-redis/v9"

	"github.com/analysis-cache/service/internal/scratch"
)

// Env is what a test package gets: a private database and a private prefix.
type Env struct {
	// DatabaseURL points at a database created for this package and dropped after it.
	DatabaseURL string
	// RedisURL points at the Redis server (shared); isolate with RedisPrefix.
	RedisURL string
	// RedisPrefix is unique to this package run; every key it leaves is deleted after it.
	RedisPrefix string
}

// UniquePrefix returns a key prefix under RedisPrefix that no other call
// returns: label, then random characters (no glob characters), then ":".
// Tests that keep state under fixed key names (a stream, a consumer group)
// take one per run, so repetitions (go test -count=N) share nothing.
func (e *Env) UniquePrefix(label string) string {
	return e.RedisPrefix + scratch.Name(label+"-") + ":"
}

// LeftoverAge is the age past which Run drops another run's database and
// keys even when it cannot tell whether that run's process is alive (it ran
// on another host): far above any test timeout this project uses.
const LeftoverAge = 3 * time.Hour

var current *Env

// Get returns the package's Env. It fails the test when TestMain did not call Run.
func Get(tb testing.TB) *Env {
	tb.Helper()
	if current == nil {
		tb.Fatal("testenv: call os.Exit(testenv.Run(m)) from TestMain in this package")
	}
	return current
}

// Run provisions the package's Env, runs m and tears everything down. It
// returns the exit code for os.Exit.
func Run(m *testing.M) (code int) {
	var cleanups []func()
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(os.Stderr, "testenv: panic: %v\n", r)
			code = 2
		}
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
	}()

	dbServer, redisURL, stop, err := servers()
	if stop != nil {
		cleanups = append(cleanups, stop)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "testenv:", err)
		return 1
	}

	sweepLeftovers(dbServer, redisURL)
	suffix := scratch.Now().Name("")
	dbURL, dropDB, err := createDatabase(dbServer, "t_"+suffix)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testenv:", err)
		return 1
	}
	cleanups = append(cleanups, dropDB)

	prefix := "test:" + suffix + ":"
	cleanups = append(cleanups, func() { deletePrefix(redisURL, prefix) })

	current = &Env{DatabaseURL: dbURL, RedisURL: redisURL, RedisPrefix: prefix}
	return m.Run()
}

const howTo = `integration tests need Postgres and Redis: set TEST_DATABASE_URL (e.g. postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable) and TEST_REDIS_URL (e.g. redis://127.0.0.1:6379/0), or run a Docker engine so that dockertest can start containers`

// servers returns the Postgres server URL and the Redis URL, starting
// containers for what the environment does not provide.
func servers() (dbServer, redisURL string, stop func(), err error) {
	dbServer, redisURL = os.Getenv("TEST_DATABASE_URL"), os.Getenv("TEST_REDIS_URL")
	if dbServer != "" && redisURL != "" {
		return dbServer, redisURL, nil, nil
	}
	pool, err := dockertest.NewPool("")
	if err == nil {
		err = pool.Client.Ping()
	}
	if err != nil {
		return "", "", nil, fmt.Errorf("%s (docker: %v)", howTo, err)
	}
	pool.MaxWait = 2 * time.Minute
	var resources []*dockertest.Resource
	stop = func() {
		for _, r := range resources {
			_ = pool.Purge(r)
		}
	}
	if dbServer == "" {
		r, err := pool.RunWithOptions(&dockertest.RunOptions{
			Repository: image("TEST_POSTGRES_IMAGE", "postgres"), Tag: imageTag("TEST_POSTGRES_IMAGE", "15-alpine"),
			Env: []string{"POSTGRES_HOST_AUTH_METHOD=trust"},
		}, func(c *dockertestHostConfig) { c.AutoRemove = true })
		if err != nil {
			return "", "", stop, fmt.Errorf("start postgres container: %w (%s)", err, howTo)
		}
		resources = append(resources, r)
		_ = r.Expire(600)
		dbServer = fmt.Sprintf("postgres://postgres@%s/postgres?sslmode=disable", r.GetHostPort("5432/tcp"))
		if err := pool.Retry(func() error {
			conn, err := pgx.Connect(context.Background(), dbServer)
			if err != nil {
				return err
			}
			return conn.Close(context.Background())
		}); err != nil {
			return "", "", stop, fmt.Errorf("postgres container never answered: %w", err)
		}
	}
	if redisURL == "" {
		r, err := pool.RunWithOptions(&dockertest.RunOptions{
			Repository: image("TEST_REDIS_IMAGE", "redis"), Tag: imageTag("TEST_REDIS_IMAGE", "7-alpine"),
		}, func(c *dockertestHostConfig) { c.AutoRemove = true })
		if err != nil {
			return "", "", stop, fmt.Errorf("start redis container: %w (%s)", err, howTo)
		}
		resources = append(resources, r)
		_ = r.Expire(600)
		redisURL = "redis://" + r.GetHostPort("6379/tcp") + "/0"
		if err := pool.Retry(func() error {
			opt, _ := redis.ParseURL(redisURL)
			c := redis.NewClient(opt)
			defer c.Close()
			return c.Ping(context.Background()).Err()
		}); err != nil {
			return "", "", stop, fmt.Errorf("redis container never answered: %w", err)
		}
	}
	return dbServer, redisURL, stop, nil
}

// image returns the repository part of $env ("mirror/postgres:15" → "mirror/postgres"), or def.
func image(env, def string) string {
	v := os.Getenv(env)
	if v == "" {
		return def
	}
	if i := strings.LastIndex(v, ":"); i > strings.LastIndex(v, "/") {
		return v[:i]
	}
	return v
}

// imageTag returns the tag part of $env, or def.
func imageTag(env, def string) string {
	v := os.Getenv(env)
	if i := strings.LastIndex(v, ":"); v != "" && i > strings.LastIndex(v, "/") {
		return v[i+1:]
	}
	if v != "" {
		return "latest"
	}
	return def
}

// createDatabase creates database name on the server of serverURL and
// returns its URL and a function that drops it.
func createDatabase(serverURL, name string) (string, func(), error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dbURL, err := scratch.CreateDatabase(ctx, serverURL, name)
	if err != nil {
		return "", nil, fmt.Errorf("TEST_DATABASE_URL: %w (%s)", err, howTo)
	}
	drop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := scratch.DropDatabase(ctx, serverURL, name); err != nil {
			fmt.Fprintln(os.Stderr, "testenv:", err)
		}
	}
	return dbURL, drop, nil
}

// deletePrefix removes every key under prefix.
func deletePrefix(redisURL, prefix string) {
	opt, err := redis.ParseURL(redisURL)
	if err != nil {
		return
	}
	c := redis.NewClient(opt)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := scratch.DeletePrefix(ctx, c, prefix); err != nil {
		fmt.Fprintln(os.Stderr, "testenv: delete keys:", err)
	}
}

// sweepLeftovers drops the databases ("t_{stamp}...") and keys
// ("test:{stamp}:...") of runs that are over (scratch.Stamp.Leftover). It
// never fails the run: errors are reported on stderr.
func sweepLeftovers(dbServer, redisURL string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if dropped, err := scratch.DropLeftoverDatabases(ctx, dbServer, "t_", LeftoverAge); err != nil {
		fmt.Fprintln(os.Stderr, "testenv: sweep leftover databases:", err)
	} else if len(dropped) > 0 {
		fmt.Fprintf(os.Stderr, "testenv: dropped %d leftover databases of crashed runs\n", len(dropped))
	}
	opt, err := redis.ParseURL(redisURL)
	if err != nil {
		return
	}
	c := redis.NewClient(opt)
	defer c.Close()
	if _, err := scratch.DeleteLeftoverPrefixes(ctx, c, "test:", LeftoverAge); err != nil {
		fmt.Fprintln(os.Stderr, "testenv: sweep leftover keys:", err)
	}
}

// FreePort returns a loopback TCP port that was free a moment ago, for a
// server a test starts itself (a second Redis, the built binary).
func FreePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("testenv: find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
