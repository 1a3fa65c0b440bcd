// Command api is the Analysis API: a FastAPI-compatible service that puts
// Redis in front of Postgres with one caching pattern per endpoint.
//
// Wiring, in order: configuration → Postgres (migrations) → Redis →
// repository → cache patterns and decorators → services → gin router.
// SIGTERM or SIGINT stops accepting connections, finishes in-flight
// requests, drains the write-behind queue within SHUTDOWN_TIMEOUT and
// closes the pools.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	cfg, err := LoadConfig(os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "invalid configuration:\n"+err.Error())
		os.Exit(2)
	}
	if err := NewMain(cfg).Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "api:", err)
		os.Exit(1)
	}
}
