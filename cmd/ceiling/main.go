// Command ceiling serves the upper bounds that cmd/bench measures the
// service against, on the same machine, core, Postgres and Redis:
//
//   - GET /static/:id answers the same bytes as a real cached GET of an
//     analysis, from memory: the most gin can do for that body (router,
//     context, one write), with nothing else;
//   - GET /redis/:id does one go-redis GET of the service's own cache entry
//     for that id (the same key, so the same value size) and writes the
//     value as is: gin plus one Redis round trip, the floor of any
//     cache-aside read;
//   - PATCH /write/:id (with -database-url) decodes a JSON body of title
//     and status, runs one UPDATE analyses … RETURNING of that row in
//     autocommit through a pgx pool, encodes the row as JSON, does one
//     Redis SET of it and answers it: the least any write-through can do.
//
// The real handlers must do at least that plus their own work (decoding and
// encrypting entries, the invalidation log, the version guard), so their
// ratio to these numbers is the overhead of everything else they do.
// /write/:id SETs keys of its own ("<prefix>ceiling:analysis:<id>"), never
// the service's entries.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
)

func main() {
	if err := run(); err != nil {
		slog.Error("ceiling", "error", err)
		os.Exit(1)
	}
}

func run() error {
	addr := flag.String("addr", "127.0.0.1:8100", "listen address")
	bodyFile := flag.String("body", "", "file holding the body /static/:id answers (a real cached GET body)")
	redisURL := flag.String("redis-url", "redis://127.0.0.1:6379/0", "Redis the /redis/:id route reads and /write/:id writes")
	prefix := flag.String("prefix", "app:", "CACHE_PREFIX of the service whose entries /redis/:id reads")
	databaseURL := flag.String("database-url", "", "Postgres whose analyses /write/:id updates (empty: no /write/:id)")
	pgConns := flag.Int("pg-conns", 20, "pgx pool size of /write/:id (the service's pool holds 20)")
	flag.Parse()

	body, err := os.ReadFile(*bodyFile)
	if err != nil {
		return fmt.Errorf("read body: %w", err)
	}
	opts, err := redis.ParseURL(*redisURL)
	if err != nil {
		return fmt.Errorf("parse redis url: %w", err)
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()

	var w *writer
	if *databaseURL != "" {
		cfg, err := pgxpool.ParseConfig(*databaseURL)
		if err != nil {
			return fmt.Errorf("parse database url: %w", err)
		}
		cfg.MaxConns = int32(*pgConns)
		pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
		if err != nil {
			return fmt.Errorf("postgres pool: %w", err)
		}
		defer pool.Close()
		w = &writer{pool: pool, rdb: rdb, prefix: *prefix + writePrefix}
	}
	gin.SetMode(gin.ReleaseMode)
	r := routes(body, rdb, *prefix, w)

	srv := &http.Server{Addr: *addr, Handler: r}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		srv.Shutdown(context.Background())
	}()
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve %s: %w", *addr, err)
	}
	return nil
}

// writePrefix follows the service's CACHE_PREFIX in the keys /write/:id SETs.
const writePrefix = "ceiling:analysis:"

// routes serves body on /static/:id, the service's entries under prefix on
// /redis/:id and, when w is not nil, the write ceiling on /write/:id.
func routes(body []byte, rdb *redis.Client, prefix string, w *writer) *gin.Engine {
	r := gin.New()
	r.GET("/static/:id", func(c *gin.Context) {
		c.Data(http.StatusOK, "application/json", body)
	})
	r.GET("/redis/:id", func(c *gin.Context) {
		v, err := rdb.Get(c.Request.Context(), prefix+"analysis:"+c.Param("id")).Bytes()
		switch {
		case errors.Is(err, redis.Nil):
			c.Status(http.StatusNotFound)
		case err != nil:
			slog.Error("redis get", "id", c.Param("id"), "error", err)
			c.Status(http.StatusServiceUnavailable)
		default:
			c.Data(http.StatusOK, "application/json", v)
		}
	})
	if w != nil {
		r.PATCH("/write/:id", w.patch)
	}
	r.GET("/health", func(c *gin.Context) { c.Data(http.StatusOK, "application/json", []byte(`{"status":"ok"}`)) })
	return r
}

// writer is the write ceiling: one UPDATE … RETURNING, one Redis SET.
type writer struct {
	pool   *pgxpool.Pool
	rdb    *redis.Client
	prefix string // of the keys it SETs
}

// updateSQL changes the fields sent (title, status), bumps the version like
// the service does, and returns the whole row.
const updateSQL = `UPDATE analyses SET title = COALESCE($2, title), status = COALESCE($3, status),
  version = version + 1, updated_at = now()
WHERE id = $1
RETURNING id, owner_id, url, title, status, summary, score, tags, notes, version, created_at, updated_at`

// analysis is the row as JSON, with the field names of the service's answer.
type analysis struct {
	ID        uuid.UUID `json:"id"`
	OwnerID   uuid.UUID `json:"owner_id"`
	URL       string    `json:"url"`
	Title     string    `json:"title"`
	Status    string    `json:"status"`
	Summary   *string   `json:"summary"`
	Score     *float64  `json:"score"`
	Tags      []string  `json:"tags"`
	Notes     *string   `json:"notes"`
	Version   int64     `json:"version"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// entryTTL is the lifetime of the keys the ceiling SETs (the service's
// CACHE_TTL default).
const entryTTL = time.Hour

func (w *writer) patch(c *gin.Context) {
	ctx := c.Request.Context()
	id, err := uuid.Parse(c.Param("id"))
	if err != nil {
		c.Status(http.StatusNotFound)
		return
	}
	var in struct {
		Title  *string `json:"title"`
		Status *string `json:"status"`
	}
	if err := json.NewDecoder(c.Request.Body).Decode(&in); err != nil {
		c.Status(http.StatusUnprocessableEntity)
		return
	}
	var a analysis
	err = w.pool.QueryRow(ctx, updateSQL, [16]byte(id), in.Title, in.Status).Scan((*[16]byte)(&a.ID), (*[16]byte)(&a.OwnerID), &a.URL, &a.Title,
		&a.Status, &a.Summary, &a.Score, &a.Tags, &a.Notes, &a.Version, &a.CreatedAt, &a.UpdatedAt)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		c.Status(http.StatusNotFound)
		return
	case err != nil:
		slog.Error("postgres update", "id", id, "error", err)
		c.Status(http.StatusServiceUnavailable)
		return
	}
	out, err := json.Marshal(a)
	if err != nil {
		slog.Error("encode", "id", id, "error", err)
		c.Status(http.StatusInternalServerError)
		return
	}
	if err := w.rdb.Set(ctx, w.prefix+id.String(), out, entryTTL).Err(); err != nil {
		slog.Error("redis set", "id", id, "error", err)
		c.Status(http.StatusServiceUnavailable)
		return
	}
	c.Data(http.StatusOK, "application/json", out)
}
