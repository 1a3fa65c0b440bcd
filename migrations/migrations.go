// Package migrations holds the versioned SQL schema of the service and
// applies it with goose.
//
// Guarantees:
//   - The SQL files are embedded in the binary; what runs is what was built.
//   - Up is safe to call from several processes at once: goose holds a
//     Postgres session-level advisory lock while it migrates, so exactly one
//     process applies each version and the others wait, then find nothing to do.
//   - Up is idempotent: applied versions are recorded in goose_db_version.
package migrations

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"log/slog"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

//go:embed *.sql
var files embed.FS

// Up applies every pending migration to db under a Postgres advisory lock, so
// concurrent callers never apply a version twice. It logs each applied
// version through slog.Default at info level.
func Up(ctx context.Context, db *sql.DB) error {
	return UpWithLogger(ctx, db, slog.Default())
}

// UpWithLogger is Up with goose's log lines sent to log (at its levels).
func UpWithLogger(ctx context.Context, db *sql.DB, log *slog.Logger) error {
	// Poll the advisory lock every second (goose's default is 5 s) for up
	// to 5 minutes: a second replica starting with the first waits about as
	// long as the migration takes, not 5 s more.
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 300))
	if err != nil {
		return fmt.Errorf("migrations: session locker: %w", err)
	}
	provider, err := goose.NewProvider(goose.DialectPostgres, db, files,
		goose.WithSessionLocker(locker),
		goose.WithSlog(log),
		goose.WithDisableGlobalRegistry(true),
	)
	if err != nil {
		return fmt.Errorf("migrations: provider: %w", err)
	}
	results, err := provider.Up(ctx)
	if err != nil {
		return fmt.Errorf("migrations: up: %w", err)
	}
	for _, r := range results {
		log.InfoContext(ctx, "migration applied", "version", r.Source.Version, "file", r.Source.Path, "duration", r.Duration)
	}
	return nil
}
