package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/analysis-cache/service/internal/scratch"
)

// flushBatchSize is the server's WRITE_BEHIND_BATCH_SIZE in the benchmark:
// the 1000 items of one bulk request go to Postgres in one batch.
const flushBatchSize = 1000

// bench is one benchmark run: the server under test, its database and
// prefix, and what the scenarios share.
type bench struct {
	o   options
	p   plan
	dir string // scratch files (path lists, bodies, logs)

	db     *database
	rdb    *redis.Client
	prefix string
	api    *process
	client *apiClient
	pprof  string // host:port of the server's net/http/pprof

	ceil     *process // cmd/ceiling, started by the cached-GET scenario
	ceilBase string

	gen *rows
	ids []uuid.UUID // the first p.ItemRows seeded ids
	rep *report
}

// newBench creates the database, starts the server on it, and seeds it.
func newBench(ctx context.Context, o options, p plan) (b *bench, err error) {
	for _, tool := range []string{"wrk", "redis-benchmark", "redis-server"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("%s is needed: %w (apt-get install wrk redis-tools redis-server)", tool, err)
		}
	}
	if _, err := os.Stat(o.server); err != nil {
		return nil, fmt.Errorf("server binary %s: %w (run make build)", o.server, err)
	}
	if !pinning() {
		slog.Warn("taskset or a second CPU is missing: server and wrk are not pinned, figures are noisier")
	}
	b = &bench{o: o, p: p, prefix: scratch.Name("bench:") + ":", rep: &report{}}
	defer func() {
		if err != nil {
			b.close()
			b = nil
		}
	}()
	if b.dir, err = os.MkdirTemp("", "bench-"); err != nil {
		return b, fmt.Errorf("scratch dir: %w", err)
	}
	if b.db, err = createDatabase(ctx, o.databaseURL); err != nil {
		return b, err
	}
	opts, err := redis.ParseURL(o.redisURL)
	if err != nil {
		return b, fmt.Errorf("parse REDIS_URL: %w", err)
	}
	b.rdb = redis.NewClient(opts)
	if err := b.rdb.Ping(ctx).Err(); err != nil {
		return b, fmt.Errorf("redis %s: %w", o.redisURL, err)
	}
	if err := b.startServer(ctx); err != nil {
		return b, err
	}
	if err := b.db.connect(ctx); err != nil {
		return b, err
	}
	return b, b.seed(ctx)
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// startServer starts bin/api pinned to CPU 0 with its own database and
// prefix, and waits for /ready.
func (b *bench) startServer(ctx context.Context) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	pprofPort, err := freePort()
	if err != nil {
		return err
	}
	key := make([]byte, 32)
	rand.Read(key)
	token := randomHex(16)
	b.pprof = fmt.Sprintf("127.0.0.1:%d", pprofPort)
	env := []string{
		fmt.Sprintf("PORT=%d", port),
		"DATABASE_URL=" + b.db.url,
		"REDIS_URL=" + b.o.redisURL,
		"CACHE_PREFIX=" + b.prefix,
		"ADMIN_TOKEN=" + token,
		"CACHE_ENCRYPTION_KEY=" + base64.StdEncoding.EncodeToString(key),
		fmt.Sprintf("WRITE_BEHIND_BATCH_SIZE=%d", flushBatchSize),
		"WRITE_BEHIND_MAX_PENDING=10000000",
		"LOG_LEVEL=warn",
		"GIN_MODE=release",
		"PPROF_ADDR=" + b.pprof,
	}
	server, err := filepath.Abs(b.o.server)
	if err != nil {
		return fmt.Errorf("server path: %w", err)
	}
	if b.api, err = startProcess("api", b.dir, pinned(context.Background(), 0, server), env...); err != nil {
		return err
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	b.client = &apiClient{base: base, token: token, http: &http.Client{
		Timeout:   60 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 1024, MaxConnsPerHost: 0},
	}}
	slog.Info("server starting", "url", base, "database", b.db.name, "prefix", b.prefix, "pinned", pinning())
	return b.api.waitReady(ctx, base+"/ready", 60*time.Second)
}

// seed copies ItemRows rows (whose ids the item scenarios read), then the
// rest up to StatsRows.
func (b *bench) seed(ctx context.Context) error {
	b.gen = newRows()
	ids, _, err := b.db.copyRows(ctx, b.gen, b.p.ItemRows, fmt.Sprintf("seed %d analyses", b.p.ItemRows))
	if err != nil {
		return err
	}
	b.ids = ids
	if rest := b.p.StatsRows - b.p.ItemRows; rest > 0 {
		if _, _, err := b.db.copyRows(ctx, b.gen, rest, fmt.Sprintf("seed %d more for stats", rest)); err != nil {
			return err
		}
	}
	if _, err := b.db.conn.Exec(ctx, "ANALYZE analyses"); err != nil {
		return fmt.Errorf("analyze analyses: %w", err)
	}
	return nil
}

// close stops what newBench started and removes what it created: the
// server, the database, every key under the prefix, the scratch files.
func (b *bench) close() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b.ceil.stop()
	b.api.stop()
	if b.db != nil {
		if err := b.db.drop(ctx); err != nil {
			slog.Error("cleanup", "error", err)
		}
	}
	if b.rdb != nil {
		if n, err := scratch.DeletePrefix(ctx, b.rdb, b.prefix); err != nil {
			slog.Error("cleanup", "prefix", b.prefix, "error", err)
		} else {
			slog.Info("cleanup", "database", b.db.name, "redis keys deleted", n)
		}
		b.rdb.Close()
	}
	if b.dir != "" {
		os.RemoveAll(b.dir)
	}
}

// writeLines writes lines to a scratch file and returns its path.
func (b *bench) writeLines(name string, lines []string) (string, error) {
	path := filepath.Join(b.dir, name)
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("write %s: %w", name, err)
	}
	return path, nil
}

// idPaths maps ids to "<prefix><id>" paths.
func idPaths(prefix string, ids []uuid.UUID) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = prefix + id.String()
	}
	return out
}
