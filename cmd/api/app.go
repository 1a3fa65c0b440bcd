package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/analysis-cache/service/api"
	"github.com/analysis-cache/service/cache"
	"github.com/analysis-cache/service/internal/telemetry"
	"github.com/analysis-cache/service/repository"
	"github.com/analysis-cache/service/service"
)

// Main is the whole service: Run opens every connection, serves until its
// context ends, then shuts down in order. End-to-end tests start it too.
type Main struct {
	Config Config
	Log    *slog.Logger

	// Addr is the address the server listens on once Run has started
	// (useful with PORT=0 in tests); closed Ready reports it.
	Addr  string
	Ready chan struct{}

	// SpanExporter, when set, turns tracing on and receives the spans,
	// whatever the OTEL_* variables say (tests); nil: the variables decide.
	SpanExporter sdktrace.SpanExporter
}

// NewMain returns a Main for cfg with a logger of the configured format and level.
func NewMain(cfg Config) *Main {
	return &Main{Config: cfg, Log: newLogger(cfg), Ready: make(chan struct{})}
}

func newLogger(cfg Config) *slog.Logger {
	level, _ := parseLogLevel(cfg.LogLevel) // validated by LoadConfig
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}

// Run serves until ctx is done, then shuts down gracefully. It returns an
// error when a dependency cannot be opened or the server fails.
func (m *Main) Run(ctx context.Context) error {
	cfg, log := m.Config, m.Log

	tracing, err := telemetry.Start(ctx, telemetry.Options{
		ServiceName: "analysis-api", ServiceVersion: buildVersion(), Exporter: m.SpanExporter,
	})
	if err != nil {
		return err // names the OTEL_* variable
	}
	defer func() { // last: the drain's flush spans are exported too
		sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
		defer cancel()
		if err := tracing.Shutdown(sctx); err != nil {
			log.Warn("tracing", "error", err)
		}
	}()
	if tracing.Enabled() {
		log = slog.New(telemetry.NewLogHandler(log.Handler())) // trace_id and span_id
	}

	// go-redis's own lines (pool, Sentinel, Cluster) go through this
	// logger too, so LOG_FORMAT=json output stays JSON.
	redis.SetLogger(redisLogger{log: log})

	pg := postgresTarget(cfg.DatabaseURL)
	repoOpts := repository.DefaultOptions()
	repoOpts.Tracer = tracing.Postgres()
	// Instances of one cache (one CACHE_PREFIX) share its invalidation log.
	repoOpts.ChangeScope = cfg.CachePrefix
	repo, err := repository.OpenWithOptions(ctx, cfg.DatabaseURL, log, repoOpts)
	if err != nil {
		return fmt.Errorf("DATABASE_URL (%s): %w", pg, err)
	}
	defer repo.Close()
	if err := repo.Migrate(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}

	// One gate and one circuit breaker for every Redis client: an outage
	// seen by any of them keeps every read off Redis until the invalidation
	// log has been caught up (cache.Gate, cache.Breaker).
	gate := cache.NewGate()
	breaker := cache.NewBreaker(gate, log, cache.BreakerOptions{})
	timeouts := redisTimeouts{Command: cfg.RedisTimeout, Dial: cfg.RedisDialTimeout, Pool: cfg.RedisPoolTimeout, PoolSize: cfg.RedisPoolSize}
	rdb, err := openRedis(cfg.RedisURL, timeouts, cfg.CachePrefix, breaker)
	if err != nil {
		return err
	}
	defer rdb.Close()
	if err := tracing.InstrumentRedis(rdb); err != nil {
		return err
	}
	// Write-behind gets its own pool with a longer timeout: a 1000-item
	// enqueue is one Lua call that can take longer than a cache read may, and
	// a timeout there would answer 503 for writes Redis in fact accepted.
	wbTimeouts := timeouts
	wbTimeouts.Command = cfg.WriteBehindRedisTimeout
	wbRedis, err := openRedis(cfg.RedisURL, wbTimeouts, cfg.CachePrefix, breaker)
	if err != nil {
		return err
	}
	defer wbRedis.Close()
	if err := tracing.InstrumentRedis(wbRedis); err != nil {
		return err
	}

	codec, err := cache.NewCodecFromEnv(cfg.CacheEncryptionKey, log)
	if err != nil {
		return err // names CACHE_ENCRYPTION_KEY
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := cache.NewMetrics(reg, log)
	backend := cache.Backend{Redis: rdb, Keys: cache.Keys{Prefix: cfg.CachePrefix}, Codec: codec, Metrics: metrics, Gate: gate, Logger: log}
	// Write-behind enqueues and flushes on its own pool (above).
	wbBackend := backend
	wbBackend.Redis = wbRedis

	// Analyses: cache-aside reads and write-through writes (one entry per
	// analysis), list invalidation on every change, all settled by the
	// invalidation log (which the service makes track analyses).
	lists := cache.NewListInvalidation(backend, service.AnalysisResource)
	aside := cache.NewAside(backend, service.AnalysisResource, cache.AsideOptions{
		TTL: cfg.CacheTTL, NegativeTTL: cfg.NegativeCacheTTL, Jitter: cfg.CacheTTLJitter,
	})
	changes := cache.NewLog(repo, backend, cache.LogOptions{
		Grace: cfg.OutboxGrace, Retention: cfg.OutboxRetention,
	})
	analyses := service.NewAnalyses(repo, aside, lists, changes)
	listService := service.NewLists(backend, repo, cache.PageOptions{TTL: cfg.ListCacheTTL, Jitter: cfg.CacheTTLJitter})
	// The contract lets stats lag by at most STATS_TTL: a value is fresh for
	// at most half of it (jitter included) and then served stale, while one
	// refresh runs, for at most the other half; after that it is gone.
	statsFresh := time.Duration(float64(cfg.StatsTTL/2) / (1 + cfg.CacheTTLJitter))
	guard := cache.NewStampedeGuard(backend, cache.StampedeOptions{
		Resource: "stats", TTL: statsFresh, StaleFor: cfg.StatsTTL - cfg.StatsTTL/2, Jitter: cfg.CacheTTLJitter,
		Tracer: tracing.Tracer(cacheTracer),
	})
	hostname, _ := os.Hostname()
	writeBehind := cache.NewWriteBehind(wbBackend, service.AnalysisResource, service.AnalysisBulkStore(repo), service.AnalysisEntities{}, lists, cache.WriteBehindOptions{
		BatchSize: cfg.WriteBehindBatchSize, FlushInterval: cfg.WriteBehindFlushInterval,
		ClaimIdle: cfg.WriteBehindClaimIdle, EntryTTL: cfg.CacheTTL, MaxPending: cfg.WriteBehindMaxPending,
		MaxAttempts: cfg.WriteBehindMaxAttempts, Consumer: hostname + "-" + strconv.Itoa(os.Getpid()),
		Jitter: cfg.CacheTTLJitter, Log: changes, Tracer: tracing.Tracer(cacheTracer),
		Streams: "wb:", // the streams of every release so far: "wb:stream", "wb:dead"
	})
	invalidator := cache.NewInvalidator(backend, service.AnalysisResource.Lists)

	gin.SetMode(gin.ReleaseMode)
	router := api.NewRouter(api.Deps{
		Analyses:         analyses,
		Lists:            listService,
		Stats:            service.NewStats(repo, guard),
		Ingest:           service.NewIngest(writeBehind),
		Admin:            service.NewAdmin(metrics, invalidator, writeBehind.Pending),
		Ready:            readiness(repo, rdb),
		Log:              log,
		Registry:         reg,
		MaxBodyBytes:     cfg.MaxBodyBytes,
		MaxBulkBodyBytes: cfg.MaxBulkBodyBytes,
		AdminToken:       cfg.AdminToken,
		TracerProvider:   tracing.HTTP(),
		Propagator:       tracing.Propagator,
	})

	ln, err := net.Listen("tcp", ":"+strconv.Itoa(cfg.Port))
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	m.Addr = ln.Addr().String()
	server := &http.Server{
		Handler: router,
		// A client trickling a body cannot hold a goroutine (and up to a
		// 10 MiB bulk buffer) forever.
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}

	if cfg.PprofAddr != "" {
		go servePprof(cfg.PprofAddr, log)
	}

	flusherCtx, stopFlusher := context.WithCancel(context.Background())
	flusherDone := make(chan error, 1)
	go func() { flusherDone <- writeBehind.Run(flusherCtx) }()
	// The invalidation log: listens for changes other processes could not
	// apply, catches up whenever the gate closes, sweeps changes their
	// writers left, purges applied ones. Stopped with the flusher.
	logDone := make(chan struct{})
	go func() { defer close(logDone); changes.Run(flusherCtx) }()
	// Serve from Redis from the first request: wait (bounded) for the first
	// catch-up. Past the bound the service starts anyway, bypassing Redis
	// until it has caught up.
	if !waitOpen(gate, cfg.ShutdownTimeout) {
		log.Warn("invalidation log not caught up yet; serving from Postgres (BYPASS) until it is")
	}

	serveErr := make(chan error, 1)
	go func() { serveErr <- server.Serve(ln) }()
	_, port, _ := net.SplitHostPort(m.Addr) // the real port, also with PORT=0
	log.Info("started", "version", buildVersion(), "environment", cfg.Environment,
		"postgres", pg, "redis", redisTarget(cfg.RedisURL), "cache_prefix", cfg.CachePrefix,
		"tracing", tracing.Enabled(), "addr", m.Addr, "docs", "http://localhost:"+port+"/docs")
	close(m.Ready)

	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case err := <-serveErr:
		stopFlusher()
		return fmt.Errorf("serve: %w", err)
	}

	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	// Stop accepting and finish in-flight requests first: a bulk request
	// answered 202 during shutdown is in the stream before the drain starts.
	if err := server.Shutdown(shutdownCtx); err != nil {
		log.Warn("http shutdown", "error", err)
	}
	guard.Close() // background stats refreshes
	stopFlusher()
	if err := <-flusherDone; err != nil && !errors.Is(err, context.Canceled) {
		log.Warn("write-behind flusher", "error", err)
	}
	<-logDone
	// Drain what is pending; what is left stays in the stream for the next start.
	if err := writeBehind.Stop(shutdownCtx); err != nil {
		log.Warn("write-behind drain incomplete; entries stay in the stream", "error", err)
	}
	log.Info("stopped")
	return nil
}

// cacheTracer is the instrumentation scope of the cache's spans.
const cacheTracer = "github.com/analysis-cache/service/cache"

// version is the service version, set at build time with
// -ldflags '-X main.version=v1.2.3'; when empty, buildVersion falls back to
// the VCS revision Go stamps into the binary.
var version string

// buildVersion is version, else the VCS revision of the build (with
// "+dirty" for uncommitted changes), else "devel" (go run, go test).
func buildVersion() string {
	if version != "" {
		return version
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	rev, dirty := "", false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return "devel"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if dirty {
		rev += "+dirty"
	}
	return rev
}

// postgresTarget is host:port/database of DATABASE_URL, without user,
// password or options, for logs and errors.
func postgresTarget(dsn string) string {
	pc, err := pgconn.ParseConfig(dsn)
	if err != nil {
		return "unparsable DATABASE_URL"
	}
	return net.JoinHostPort(pc.Host, strconv.Itoa(int(pc.Port))) + "/" + pc.Database
}

// redisTarget is the address(es) of REDIS_URL (with the Sentinel master
// name and the database), without user, password or other options.
func redisTarget(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "unparsable REDIS_URL"
	}
	q := u.Query()
	addrs := strings.Join(append([]string{u.Host}, q["addr"]...), ",")
	if m := q.Get("master_name"); m != "" {
		addrs = m + "@" + addrs
	}
	return u.Scheme + "://" + addrs + u.Path
}

// redisLogger sends go-redis's log lines (redis.SetLogger) to the service's
// slog logger at warn level: the library logs only what went wrong or
// changed (a Sentinel failover, a pool error), never per command.
type redisLogger struct{ log *slog.Logger }

// Printf implements go-redis's internal.Logging.
func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	if !l.log.Enabled(ctx, slog.LevelWarn) {
		return
	}
	l.log.Log(ctx, slog.LevelWarn, strings.TrimSpace(fmt.Sprintf(format, v...)), "source", "go-redis")
}

// openRedis builds the UniversalClient REDIS_URL describes (one server,
// Sentinel or Cluster; see redisOptions) with the given timeout.
func openRedis(url string, t redisTimeouts, prefix string, breaker *cache.Breaker) (redis.UniversalClient, error) {
	opts, err := redisOptions(url, t)
	if err != nil {
		return nil, err
	}
	if isCluster(opts) && !hashTagged(prefix) {
		return nil, fmt.Errorf("CACHE_PREFIX %q: on a Redis Cluster it must start with a hash tag such as {app}: so that the Lua scripts find every key in one slot", prefix)
	}
	var rdb redis.UniversalClient
	if isCluster(opts) {
		// Each node has a run_id of its own: the breaker tracks them by address.
		copts := opts.Cluster()
		copts.NewClient = func(o *redis.Options) *redis.Client {
			o.OnConnect = breaker.OnConnectTo(o.Addr)
			return redis.NewClient(o)
		}
		rdb = redis.NewClusterClient(copts)
	} else {
		opts.OnConnect = breaker.OnConnect
		rdb = redis.NewUniversalClient(opts)
	}
	rdb.AddHook(breaker)
	return rdb, nil
}

// waitOpen waits up to d for gate to open and reports whether it did.
func waitOpen(gate *cache.Gate, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for !gate.Open() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}

// readiness checks Postgres and Redis, each within a second.
func readiness(repo *repository.Postgres, rdb redis.UniversalClient) func(context.Context) map[string]string {
	return func(ctx context.Context) map[string]string {
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		checks := map[string]string{"postgres": "ok", "redis": "ok"}
		if err := repo.Ping(ctx); err != nil {
			checks["postgres"] = shortError(err)
		}
		if err := rdb.Ping(ctx).Err(); err != nil {
			checks["redis"] = shortError(err)
		}
		return checks
	}
}

// shortError keeps a readiness message short: no DSNs, no stack of wraps.
func shortError(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return "unreachable"
	}
	return "unavailable"
}

func servePprof(addr string, log *slog.Logger) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	log.Info("pprof", "addr", addr)
	if err := http.ListenAndServe(addr, mux); err != nil {
		log.Warn("pprof", "error", err)
	}
}
