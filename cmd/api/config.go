package main

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/analysis-cache/service/cache"
)

// Config is every setting of the service, read from the environment with a
// default fit for a laptop (the names and defaults in README.md, "Configuration").
type Config struct {
	Port        int    // PORT
	DatabaseURL string // DATABASE_URL
	RedisURL    string // REDIS_URL: redis://host:port/db (rediss:// for TLS)
	// RedisTimeout bounds one command's read and write (REDIS_TIMEOUT): what
	// an outage costs a request before the circuit opens and requests fail
	// fast. It does not bound dialling or the wait for a pooled connection.
	RedisTimeout time.Duration
	// RedisDialTimeout bounds one dial (REDIS_DIAL_TIMEOUT).
	RedisDialTimeout time.Duration
	// RedisPoolTimeout is how long a request waits for a pooled connection
	// in a burst (REDIS_POOL_TIMEOUT): load waits, it is not an outage.
	RedisPoolTimeout time.Duration
	// RedisPoolSize is the most connections per Redis node (REDIS_POOL_SIZE).
	RedisPoolSize int
	// OutboxGrace is the age after which any process applies a change of
	// the invalidation log its writer left pending (OUTBOX_GRACE).
	OutboxGrace time.Duration
	// OutboxRetention is how long applied changes are kept, to be replayed
	// when Redis restarts from an AOF that lost the latest writes (OUTBOX_RETENTION).
	OutboxRetention time.Duration
	// WriteBehindRedisTimeout bounds the write-behind pool's calls
	// (WRITE_BEHIND_REDIS_TIMEOUT): one bulk enqueue is a single Lua call over
	// up to 1000 items.
	WriteBehindRedisTimeout time.Duration

	CachePrefix      string        // CACHE_PREFIX
	CacheTTL         time.Duration // CACHE_TTL
	ListCacheTTL     time.Duration // LIST_CACHE_TTL
	CacheTTLJitter   float64       // CACHE_TTL_JITTER: 0.1 = ±10%
	NegativeCacheTTL time.Duration // NEGATIVE_CACHE_TTL
	StatsTTL         time.Duration // STATS_TTL

	WriteBehindFlushInterval time.Duration // WRITE_BEHIND_FLUSH_INTERVAL
	WriteBehindBatchSize     int           // WRITE_BEHIND_BATCH_SIZE
	WriteBehindMaxPending    int64         // WRITE_BEHIND_MAX_PENDING
	WriteBehindClaimIdle     time.Duration // WRITE_BEHIND_CLAIM_IDLE: pending this long on a consumer → claimed by another
	WriteBehindMaxAttempts   int           // WRITE_BEHIND_MAX_ATTEMPTS: then dead-lettered

	AdminToken string // ADMIN_TOKEN: empty disables the admin API
	// CacheEncryptionKey is CACHE_ENCRYPTION_KEY: comma-separated base64
	// 32-byte keys, the first sealing and every one opening (key rotation);
	// empty → the published development key, refused in production.
	CacheEncryptionKey string

	MaxBodyBytes     int64 // MAX_BODY_BYTES
	MaxBulkBodyBytes int64 // MAX_BULK_BODY_BYTES

	LogLevel        string        // LOG_LEVEL: debug, info, warn, error
	LogFormat       string        // LOG_FORMAT: json or text; default json when ENVIRONMENT=production
	Environment     string        // ENVIRONMENT: development (default; "local" is an alias) or production
	ShutdownTimeout time.Duration // SHUTDOWN_TIMEOUT: in-flight requests and the write-behind drain
	PprofAddr       string        // PPROF_ADDR: serve net/http/pprof there (e.g. 127.0.0.1:6060); empty: off
}

// LoadConfig reads Config through getenv (os.Getenv in production, a map in
// tests). It reports every invalid value at once, naming the variable.
func LoadConfig(getenv func(string) string) (Config, error) {
	r := envReader{getenv: getenv}
	c := Config{
		Port:                    r.int("PORT", 8000),
		DatabaseURL:             r.str("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"),
		RedisURL:                r.str("REDIS_URL", "redis://127.0.0.1:6379/0"),
		RedisTimeout:            r.duration("REDIS_TIMEOUT", 250*time.Millisecond),
		WriteBehindRedisTimeout: r.duration("WRITE_BEHIND_REDIS_TIMEOUT", 2*time.Second),
		RedisDialTimeout:        r.duration("REDIS_DIAL_TIMEOUT", 500*time.Millisecond),
		RedisPoolTimeout:        r.duration("REDIS_POOL_TIMEOUT", 2*time.Second),
		RedisPoolSize:           r.int("REDIS_POOL_SIZE", 128),
		OutboxGrace:             r.duration("OUTBOX_GRACE", 2*time.Second),
		OutboxRetention:         r.duration("OUTBOX_RETENTION", 10*time.Second),

		CachePrefix:      r.str("CACHE_PREFIX", "app:"),
		CacheTTL:         r.duration("CACHE_TTL", time.Hour),
		ListCacheTTL:     r.duration("LIST_CACHE_TTL", 5*time.Minute),
		CacheTTLJitter:   r.float("CACHE_TTL_JITTER", 0.1),
		NegativeCacheTTL: r.duration("NEGATIVE_CACHE_TTL", 30*time.Second),
		StatsTTL:         r.duration("STATS_TTL", 60*time.Second),

		WriteBehindFlushInterval: r.duration("WRITE_BEHIND_FLUSH_INTERVAL", 5*time.Second),
		WriteBehindBatchSize:     r.int("WRITE_BEHIND_BATCH_SIZE", 100),
		WriteBehindMaxPending:    int64(r.int("WRITE_BEHIND_MAX_PENDING", 100000)),
		WriteBehindClaimIdle:     r.duration("WRITE_BEHIND_CLAIM_IDLE", 30*time.Second),
		WriteBehindMaxAttempts:   r.int("WRITE_BEHIND_MAX_ATTEMPTS", 5),

		AdminToken:         getenv("ADMIN_TOKEN"),
		CacheEncryptionKey: getenv("CACHE_ENCRYPTION_KEY"),

		MaxBodyBytes:     int64(r.int("MAX_BODY_BYTES", 1<<20)),
		MaxBulkBodyBytes: int64(r.int("MAX_BULK_BODY_BYTES", 10<<20)),

		LogLevel:        strings.ToLower(r.str("LOG_LEVEL", "info")),
		Environment:     environment(strings.ToLower(r.str("ENVIRONMENT", envDevelopment))),
		ShutdownTimeout: r.duration("SHUTDOWN_TIMEOUT", 10*time.Second),
		PprofAddr:       getenv("PPROF_ADDR"),
	}
	defFormat := "text"
	if c.Environment == envProduction {
		defFormat = "json"
	}
	c.LogFormat = strings.ToLower(r.str("LOG_FORMAT", defFormat))
	c.validate(&r)
	return c, errors.Join(r.errs...)
}

func (c *Config) validate(r *envReader) {
	check := func(ok bool, format string, args ...any) {
		if !ok {
			r.errs = append(r.errs, fmt.Errorf(format, args...))
		}
	}
	check(c.Port >= 0 && c.Port < 65536, "PORT: %d is not a port (0 picks a free one)", c.Port)
	check(c.RedisTimeout > 0, "REDIS_TIMEOUT: must be positive")
	check(c.WriteBehindRedisTimeout > 0, "WRITE_BEHIND_REDIS_TIMEOUT: must be positive")
	check(c.RedisDialTimeout > 0, "REDIS_DIAL_TIMEOUT: must be positive")
	check(c.RedisPoolTimeout > 0, "REDIS_POOL_TIMEOUT: must be positive")
	check(c.RedisPoolSize > 0, "REDIS_POOL_SIZE: must be positive")
	check(c.OutboxGrace > 0, "OUTBOX_GRACE: must be positive")
	check(c.OutboxRetention > 0, "OUTBOX_RETENTION: must be positive")
	for _, ttl := range []struct {
		name string
		d    time.Duration
	}{{"CACHE_TTL", c.CacheTTL}, {"LIST_CACHE_TTL", c.ListCacheTTL}, {"NEGATIVE_CACHE_TTL", c.NegativeCacheTTL}, {"STATS_TTL", c.StatsTTL}} {
		check(ttl.d > 0, "%s: %v is not positive (a cache key without a TTL is never written)", ttl.name, ttl.d)
	}
	check(c.CacheTTLJitter >= 0 && c.CacheTTLJitter < 1, "CACHE_TTL_JITTER: %v is not in [0, 1)", c.CacheTTLJitter)
	check(c.WriteBehindFlushInterval > 0, "WRITE_BEHIND_FLUSH_INTERVAL: must be positive")
	// A batch is one INSERT over arrays and one settle script in Redis: the
	// cap bounds how much either holds at once.
	check(c.WriteBehindBatchSize > 0 && c.WriteBehindBatchSize <= 5000, "WRITE_BEHIND_BATCH_SIZE: %d is not in 1..5000", c.WriteBehindBatchSize)
	check(c.WriteBehindMaxPending > 0, "WRITE_BEHIND_MAX_PENDING: must be positive")
	check(c.WriteBehindClaimIdle > 0, "WRITE_BEHIND_CLAIM_IDLE: must be positive")
	check(c.WriteBehindMaxAttempts > 0, "WRITE_BEHIND_MAX_ATTEMPTS: must be positive")
	check(c.MaxBodyBytes > 0, "MAX_BODY_BYTES: must be positive")
	check(c.MaxBulkBodyBytes > 0, "MAX_BULK_BODY_BYTES: must be positive")
	if _, err := pgconn.ParseConfig(c.DatabaseURL); err != nil {
		check(false, "DATABASE_URL: %s", parseConfigReason(err))
	}
	check(c.CachePrefix != "", "CACHE_PREFIX: must not be empty (it confines every key the service touches)")
	check(c.LogFormat == "json" || c.LogFormat == "text", "LOG_FORMAT: %q is not json or text", c.LogFormat)
	_, ok := parseLogLevel(c.LogLevel)
	check(ok, "LOG_LEVEL: %q is not debug, info, warn or error", c.LogLevel)
	if c.CacheEncryptionKey != "" {
		if keys, err := cache.ParseKeys(c.CacheEncryptionKey); err != nil {
			check(false, "CACHE_ENCRYPTION_KEY: %v", err)
		} else if _, err := cache.NewCodec(keys...); err != nil {
			check(false, "CACHE_ENCRYPTION_KEY: %v", err)
		} else if c.Environment == envProduction {
			dev, _ := cache.ParseKeys(cache.DevelopmentKey)
			for n, key := range keys {
				check(!bytes.Equal(key, dev[0]), "CACHE_ENCRYPTION_KEY: key %d is the published development key; generate one with openssl rand -base64 32", n+1)
			}
		}
	}
	check(c.Environment == envDevelopment || c.Environment == envProduction,
		"ENVIRONMENT: %q is not one of development, local (= development) or production", c.Environment)
	if c.Environment == envProduction {
		check(c.CacheEncryptionKey != "", "CACHE_ENCRYPTION_KEY: required in production (the development key is published); generate one with openssl rand -base64 32")
		check(c.AdminToken == "" || (len(c.AdminToken) >= 16 && c.AdminToken != "changethis"),
			"ADMIN_TOKEN: refusing a short or placeholder token in production")
	}
}

// The values of ENVIRONMENT.
const (
	envDevelopment = "development"
	envProduction  = "production"
)

// environment maps the alias "local" (the default before "development")
// to development; every other value is returned as is for validate.
func environment(v string) string {
	if v == "local" {
		return envDevelopment
	}
	return v
}

// parseConfigReason is what is wrong with a DATABASE_URL pgconn refused,
// without the connection string: pgconn masks passwords only on a
// best-effort basis, so the string itself is never repeated.
func parseConfigReason(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, "`: "); strings.HasPrefix(msg, "cannot parse `") && i >= 0 {
		return "cannot parse: " + msg[i+len("`: "):]
	}
	return "cannot parse (want postgres://user:password@host:5432/database?sslmode=disable)"
}

// envReader parses variables and collects every error instead of stopping at the first.
type envReader struct {
	getenv func(string) string
	errs   []error
}

func (r *envReader) str(name, def string) string {
	if v := r.getenv(name); v != "" {
		return v
	}
	return def
}

func (r *envReader) int(name string, def int) int {
	v := r.getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		r.errs = append(r.errs, fmt.Errorf("%s: %q is not an integer", name, v))
	}
	return n
}

func (r *envReader) float(name string, def float64) float64 {
	v := r.getenv(name)
	if v == "" {
		return def
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		r.errs = append(r.errs, fmt.Errorf("%s: %q is not a number", name, v))
	}
	return f
}

func (r *envReader) duration(name string, def time.Duration) time.Duration {
	v := r.getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		r.errs = append(r.errs, fmt.Errorf("%s: %q is not a Go duration such as 5s or 1h", name, v))
	}
	return d
}

// parseLogLevel maps LOG_LEVEL to a slog level; ok is false for anything
// but debug, info, warn (or warning) and error.
func parseLogLevel(s string) (level slog.Level, ok bool) {
	switch s {
	case "debug":
		return slog.LevelDebug, true
	case "info":
		return slog.LevelInfo, true
	case "warn", "warning":
		return slog.LevelWarn, true
	case "error":
		return slog.LevelError, true
	}
	return slog.LevelInfo, false
}
