// Package testenv gives each integration-test package its own Postgres
// database and its own Redis key prefix, so packages can run in parallel
// against one server.
//
// Each server comes from, in this order: TEST_DATABASE_URL / TEST_REDIS_URL
// when set; else the local service (LocalDatabaseURL, LocalRedisURL) when it
// answers; else a container started with dockertest (see newDocker for
// TEST_POSTGRES_IMAGE, TEST_REDIS_IMAGE, TEST_DOCKER_NETWORK). When none is
// possible the package fails with a message saying how to provide one.
// TEST_FORCE_DOCKER=1 skips the first two and always starts containers.
// Containers are removed when the package ends, whether its tests passed,
// failed or panicked (a reaper process removes them when the test process
// dies; a later run sweeps what is left).
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
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
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
	cleanups := []func(){removeBinaries}
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(os.Stderr, "testenv: panic: %v\n", r)
			code = 2
		}
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
	}()

	if owner := os.Getenv(reaperEnv); owner != "" {
		return reap(owner) // this process is a run's reaper, not a test run
	}

	dbServer, redisURL, stop, err := servers(selectionFromEnv())
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

// The local services Run uses when TEST_DATABASE_URL or TEST_REDIS_URL is
// unset and they answer (make test no longer sets the variables itself).
const (
	LocalDatabaseURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	LocalRedisURL    = "redis://127.0.0.1:6379/0"
)

const howTo = `integration tests need Postgres and Redis; provide them in one of these ways: ` +
	`set TEST_DATABASE_URL (e.g. ` + LocalDatabaseURL + `) and TEST_REDIS_URL (e.g. ` + LocalRedisURL + `); ` +
	`or run Postgres with trust auth for user postgres on 127.0.0.1:5432 and Redis on 127.0.0.1:6379; ` +
	`or run a Docker engine so that dockertest can start containers (images TEST_POSTGRES_IMAGE, TEST_REDIS_IMAGE; ` +
	`internal/testenv/images/build.sh builds both from Debian packages with no image registry, for TEST_DOCKER_NETWORK=host)`

// source says where a server of the run comes from.
type source string

const (
	fromEnv    source = "environment"
	fromLocal  source = "local service"
	fromDocker source = "docker"
)

// selection is what decides where the servers come from.
type selection struct {
	forceDocker         bool   // TEST_FORCE_DOCKER=1: containers even when URLs are set
	dbEnv, redisEnv     string // TEST_DATABASE_URL, TEST_REDIS_URL
	dbLocal, redisLocal string // LocalDatabaseURL, LocalRedisURL
	// docker connects to the Docker engine; its error goes into the message
	// that says how to provide the servers.
	docker func() (*dockerEnv, error)
}

func selectionFromEnv() selection {
	return selection{
		forceDocker: os.Getenv("TEST_FORCE_DOCKER") == "1",
		dbEnv:       os.Getenv("TEST_DATABASE_URL"), redisEnv: os.Getenv("TEST_REDIS_URL"),
		dbLocal: LocalDatabaseURL, redisLocal: LocalRedisURL,
		docker: newDocker,
	}
}

// choose returns where one server comes from: envURL when it is set (unless
// forced to docker), else localURL when answers says it answers, else docker
// (url is then empty).
func choose(forceDocker bool, envURL, localURL string, answers func(string) bool) (url string, from source) {
	switch {
	case forceDocker:
		return "", fromDocker
	case envURL != "":
		return envURL, fromEnv
	case answers(localURL):
		return localURL, fromLocal
	}
	return "", fromDocker
}

// sources records where this run's servers came from and, when containers
// were started, their owner label (for the tests).
var sources struct {
	db, redis source
	dbServer  string // the Postgres server URL
	owner     string
}

// servers returns the Postgres server URL and the Redis URL, starting
// containers for what neither the environment nor the local services
// provide. stop removes the containers.
func servers(sel selection) (dbServer, redisURL string, stop func(), err error) {
	var dbFrom, redisFrom source
	dbServer, dbFrom = choose(sel.forceDocker, sel.dbEnv, sel.dbLocal, postgresAnswers)
	redisURL, redisFrom = choose(sel.forceDocker, sel.redisEnv, sel.redisLocal, redisAnswers)
	sources.db, sources.redis, sources.dbServer = dbFrom, redisFrom, dbServer
	if dbFrom != fromDocker && redisFrom != fromDocker {
		return dbServer, redisURL, nil, nil
	}
	d, err := sel.docker()
	if err != nil {
		return "", "", nil, fmt.Errorf("%s (docker: %w)", howTo, err)
	}
	sources.owner = d.owner
	if dbFrom == fromDocker {
		if dbServer, err = d.postgres(); err != nil {
			return "", "", d.stop, err
		}
	}
	if redisFrom == fromDocker {
		if redisURL, err = d.redis(); err != nil {
			return "", "", d.stop, err
		}
	}
	return dbServer, redisURL, d.stop, nil
}

// answerTimeout bounds the check of a local service: a refused connection
// answers at once, this only matters for a server that hangs.
const answerTimeout = 10 * time.Second

// postgresAnswers reports whether a connection to serverURL succeeds.
func postgresAnswers(serverURL string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), answerTimeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, serverURL)
	if err != nil {
		return false
	}
	_ = conn.Close(ctx)
	return true
}

// redisAnswers reports whether the Redis server of redisURL answers PING.
func redisAnswers(redisURL string) bool {
	opt, err := redis.ParseURL(redisURL)
	if err != nil {
		return false
	}
	opt.MaxRetries = -1
	c := redis.NewClient(opt)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), answerTimeout)
	defer cancel()
	return c.Ping(ctx).Err() == nil
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
	p, err := freePort()
	if err != nil {
		tb.Fatalf("testenv: %v", err)
	}
	return p
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
