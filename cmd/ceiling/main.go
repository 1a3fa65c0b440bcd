// Command ceiling serves the upper bounds that cmd/bench measures the
// service's cached read against, on the same machine, core and Redis:
//
//   - GET /static/:id answers the same bytes as a real cached GET of an
//     analysis, from memory: the most gin can do for that body (router,
//     context, one write), with nothing else;
//   - GET /redis/:id does one go-redis GET of the service's own cache entry
//     for that id (the same key, so the same value size) and writes the
//     value as is: gin plus one Redis round trip, the floor of any
//     cache-aside read.
//
// The real handler must do at least the second plus decoding the entry, so
// its ratio to these numbers is the overhead of everything else it does.
// Nothing here writes to Redis.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/gin-gonic/gin"
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
	redisURL := flag.String("redis-url", "redis://127.0.0.1:6379/0", "Redis the /redis/:id route reads")
	prefix := flag.String("prefix", "app:", "CACHE_PREFIX of the service whose entries /redis/:id reads")
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

	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.GET("/static/:id", func(c *gin.Context) {
		c.Data(http.StatusOK, "application/json", body)
	})
	r.GET("/redis/:id", func(c *gin.Context) {
		v, err := rdb.Get(c.Request.Context(), *prefix+"analysis:"+c.Param("id")).Bytes()
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
	r.GET("/health", func(c *gin.Context) { c.Data(http.StatusOK, "application/json", []byte(`{"status":"ok"}`)) })

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
