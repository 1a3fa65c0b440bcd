package service

import (
	"context"
	"log/slog"
	"os"
	"sync"
	"testing"

	"github.com/analysis-cache/service/internal/testenv"
	"github.com/analysis-cache/service/repository"
)

// TestMain gives package service its private database and Redis key prefix.
func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }

var (
	migrateOnce sync.Once
	migrateErr  error
)

// openRepo opens the package's database for one test (closed after it),
// migrated once per run of the package.
func openRepo(tb testing.TB) *repository.Postgres {
	tb.Helper()
	ctx := context.Background()
	repo, err := repository.Open(ctx, testenv.Get(tb).DatabaseURL, slog.New(slog.DiscardHandler))
	if err != nil {
		tb.Fatalf("open repository: %v", err)
	}
	tb.Cleanup(func() { _ = repo.Close() })
	migrateOnce.Do(func() { migrateErr = repo.Migrate(ctx) })
	if migrateErr != nil {
		tb.Fatalf("migrate: %v", migrateErr)
	}
	return repo
}
