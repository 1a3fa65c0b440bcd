// Package repository stores analyses in Postgres through gorm (pgx
// underneath). It implements domain.AnalysisRepository.
//
// Guarantees:
//   - Errors speak the domain's language: a connection failure is
//     EUNAVAILABLE, a missing row ENOTFOUND, a taken id ECONFLICT, a version
//     mismatch EPRECONDITION; everything else is wrapped with what was being
//     done ("update analysis <id>: ...").
//   - Timestamps are set in Go, UTC with microsecond precision, and read back
//     as UTC, so what a writer holds equals what a reader gets.
//   - Every write is one statement that also records the change in the
//     invalidation log (cache_outbox), atomically (write.go). Update applies
//     the patch in SQL: concurrent updates of one row serialize on its row
//     lock, none is lost, and the version grows by exactly one per change;
//     If-Match is checked by that statement, so nothing slips in between
//     check and write. Delete likewise.
//   - Logs never contain bound values (gorm's ParameterizedQueries), so
//     notes and other user data never reach the log.
package repository

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"

	"github.com/analysis-cache/service/domain"
	"github.com/analysis-cache/service/migrations"
)

// Postgres is the Postgres implementation of domain.AnalysisRepository.
// It is safe for concurrent use.
type Postgres struct {
	db    *gorm.DB
	sql   *sql.DB
	log   *slog.Logger
	dsn   string // for the dedicated LISTEN connection of Listen
	scope string // Options.ChangeScope
}

var _ domain.AnalysisRepository = (*Postgres)(nil)

// Options are the connection pool and logging settings of Open.
type Options struct {
	// MaxOpenConns bounds the connections to Postgres (database/sql pool).
	MaxOpenConns int
	// MaxIdleConns connections are kept open between bursts.
	MaxIdleConns int
	// ConnMaxLifetime recycles connections (lets a failover or a pgbouncer
	// rebalance take effect).
	ConnMaxLifetime time.Duration
	// ConnMaxIdleTime closes connections idle that long.
	ConnMaxIdleTime time.Duration
	// SlowQuery is the duration above which a statement is logged at warn level.
	SlowQuery time.Duration
	// ChangeScope names the cache whose invalidation log this repository
	// writes and reads (the service's CACHE_PREFIX): the changes it logs
	// carry it, and Pending, Retained, Lookup, Announce and Listen see only
	// its changes, so two caches on one database never apply or announce
	// each other's changes.
	ChangeScope string
	// Tracer, when set, sees every statement of every pooled connection,
	// gorm's and the pgx paths' alike (telemetry.Tracing.Postgres); nil: none.
	Tracer pgx.QueryTracer
}

// DefaultOptions are the settings Open uses: a pool sized for a small
// service next to a default Postgres (max_connections 100).
func DefaultOptions() Options {
	return Options{
		MaxOpenConns:    20,
		MaxIdleConns:    20,
		ConnMaxLifetime: 30 * time.Minute,
		ConnMaxIdleTime: 5 * time.Minute,
		SlowQuery:       200 * time.Millisecond,
	}
}

// Open connects to the Postgres of dsn with DefaultOptions and pings it.
// It returns EUNAVAILABLE when the server cannot be reached. Add
// connect_timeout=N to dsn to bound the dial.
func Open(ctx context.Context, dsn string, log *slog.Logger) (*Postgres, error) {
	return OpenWithOptions(ctx, dsn, log, DefaultOptions())
}

// OpenWithOptions is Open with explicit pool and logging settings.
func OpenWithOptions(ctx context.Context, dsn string, log *slog.Logger, opts Options) (*Postgres, error) {
	p, err := openLazy(dsn, log, opts)
	if err != nil {
		return nil, err
	}
	if err := p.Ping(ctx); err != nil {
		_ = p.Close()
		return nil, err
	}
	return p, nil
}

// openLazy builds the pool without connecting; the first statement dials.
func openLazy(dsn string, log *slog.Logger, opts Options) (*Postgres, error) {
	if log == nil {
		log = slog.Default()
	}
	pgc := postgres.Config{DSN: dsn}
	if opts.Tracer != nil {
		pgc.OptionOpenDB = append(pgc.OptionOpenDB, stdlib.OptionBeforeConnect(func(_ context.Context, cc *pgx.ConnConfig) error {
			cc.Tracer = opts.Tracer
			return nil
		}))
	}
	db, err := gorm.Open(postgres.New(pgc), &gorm.Config{
		Logger:                 newGormLogger(log, opts.SlowQuery),
		DisableAutomaticPing:   true, // Open pings itself, translating the error
		SkipDefaultTransaction: true, // single statements need no BEGIN/COMMIT
		NowFunc:                now,
	})
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	sqlDB.SetMaxOpenConns(opts.MaxOpenConns)
	sqlDB.SetMaxIdleConns(opts.MaxIdleConns)
	sqlDB.SetConnMaxLifetime(opts.ConnMaxLifetime)
	sqlDB.SetConnMaxIdleTime(opts.ConnMaxIdleTime)
	return &Postgres{db: db, sql: sqlDB, log: log, dsn: dsn, scope: opts.ChangeScope}, nil
}

// Migrate applies the embedded migrations (see package migrations); safe to
// call from several processes starting at once.
func (p *Postgres) Migrate(ctx context.Context) error {
	return translate("migrate", migrations.UpWithLogger(ctx, p.sql, p.log))
}

// Close closes the connection pool.
func (p *Postgres) Close() error {
	if err := p.sql.Close(); err != nil {
		return fmt.Errorf("close postgres: %w", err)
	}
	return nil
}

// DB returns the gorm handle (for tests and tools; the repository's methods
// are the supported way to touch analyses).
func (p *Postgres) DB() *gorm.DB { return p.db }

// Ping checks that Postgres answers. Returns EUNAVAILABLE when it does not.
func (p *Postgres) Ping(ctx context.Context) error {
	if err := p.sql.PingContext(ctx); err != nil {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			// A ping that runs out of time is the readiness answer "unavailable".
			return domain.DatabaseUnavailable(fmt.Errorf("ping postgres: %w", err))
		}
		return translate("ping postgres", err)
	}
	return nil
}

// query runs a statement that returns rows and scans them all into dest.
// It uses Rows + ScanRows instead of gorm's Scan because Scan logs through a
// recorder that ignores ParamsFilter and would print the bound values.
func query(db *gorm.DB, dest any, sql string, args ...any) (err error) {
	rows, err := db.Raw(sql, args...).Rows()
	if err != nil {
		return err
	}
	defer func() {
		if cerr := rows.Close(); err == nil {
			err = cerr
		}
	}()
	if rows.Next() {
		if err := db.ScanRows(rows, dest); err != nil {
			return err
		}
	}
	return rows.Err()
}

// Get returns the analysis with id. Returns ENOTFOUND if there is none.
func (p *Postgres) Get(ctx context.Context, id uuid.UUID) (*domain.Analysis, error) {
	op := "get analysis " + id.String()
	var rows []analysisRow
	err := query(p.db.WithContext(ctx), &rows, "SELECT "+columns+" FROM analyses WHERE id = ?", id)
	if err != nil {
		return nil, translate(op, err)
	}
	if len(rows) == 0 {
		return nil, notFound(op)
	}
	return rows[0].toDomain(), nil
}
