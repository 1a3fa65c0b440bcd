package repository

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
	"gorm.io/gorm/logger"

	"github.com/analysis-cache/service/domain"
)

// insertBatchRows keeps one INSERT under Postgres' 65535 bind parameters
// (12 per row).
const insertBatchRows = 65535 / columnCount

// copyColumns are the columns COPY writes, in table order.
var copyColumns = []string{"id", "owner_id", "url", "title", "status", "summary", "score", "tags", "notes", "version", "created_at", "updated_at"}

// copyThreshold is the batch size above which InsertMissing stages through
// COPY. Measured (BenchmarkInsertMissing): the single multi-row INSERT wins
// at 100 and 1000 rows (one round trip, no temp table), COPY + INSERT ...
// SELECT wins at 10000 (about 2x: no 12 bind parameters per row to encode
// and plan, and a multi-statement INSERT needs a transaction anyway).
const copyThreshold = 1000

// InsertMissing inserts the items whose id is not stored yet and returns
// those ids, atomically; rows that exist are left untouched, so replaying a
// batch inserts nothing. Items must have distinct ids: a duplicate is a
// caller bug and returns EINVALID naming the id. Version < 1 is stored as 1
// and zero timestamps as now.
func (p *Postgres) InsertMissing(ctx context.Context, items []domain.Analysis) ([]uuid.UUID, error) {
	return p.insertMissingUnnest(ctx, items)
	if len(items) > copyThreshold {
		return p.insertMissingCopy(ctx, items)
	}
	return p.insertMissingInsert(ctx, items)
}

// prepareItems checks ids are distinct and normalizes the rows to store.
func prepareItems(items []domain.Analysis) ([]analysisRow, error) {
	seen := make(map[uuid.UUID]struct{}, len(items))
	rows := make([]analysisRow, len(items))
	t := now()
	for i := range items {
		id := items[i].ID
		if _, dup := seen[id]; dup {
			return nil, domain.Errorf(domain.EINVALID, "duplicate analysis id %s in batch", id)
		}
		seen[id] = struct{}{}
		r := fromDomain(&items[i])
		if r.Version < 1 {
			r.Version = 1
		}
		if r.CreatedAt.IsZero() {
			r.CreatedAt = t
		}
		if r.UpdatedAt.IsZero() {
			r.UpdatedAt = r.CreatedAt
		}
		r.CreatedAt = r.CreatedAt.UTC().Truncate(time.Microsecond)
		r.UpdatedAt = r.UpdatedAt.UTC().Truncate(time.Microsecond)
		rows[i] = r
	}
	return rows, nil
}

// insertMissingInsert is InsertMissing as multi-row INSERT ... ON CONFLICT
// (id) DO NOTHING RETURNING id statements, built by gorm (the statement
// CreateInBatches would send) in batches of insertBatchRows. The ids are
// scanned from RETURNING rather than written back into the rows, because
// gorm's write-back maps returned rows to items by position, which DO
// NOTHING breaks.
func (p *Postgres) insertMissingInsert(ctx context.Context, items []domain.Analysis) ([]uuid.UUID, error) {
	op := fmt.Sprintf("insert %d missing analyses", len(items))
	rows, err := prepareItems(items)
	if err != nil || len(rows) == 0 {
		return []uuid.UUID{}, err
	}
	inserted := make([]uuid.UUID, 0, len(rows))
	insertBatch := func(tx *gorm.DB, batch []analysisRow) error {
		stmt := tx.Session(&gorm.Session{DryRun: true}).
			Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "id"}}, DoNothing: true},
				clause.Returning{Columns: []clause.Column{{Name: "id"}}}).
			Create(&batch).Statement
		var ids []uuid.UUID
		if err := query(tx, &ids, stmt.SQL.String(), stmt.Vars...); err != nil {
			return err
		}
		inserted = append(inserted, ids...)
		return nil
	}
	// A batch statement is slow in proportion to its size; the slow-query log
	// would render tens of thousands of placeholders for nothing. Errors are
	// still logged.
	db := p.db.WithContext(ctx).Session(&gorm.Session{Logger: p.db.Logger.LogMode(logger.Error)})
	if len(rows) <= insertBatchRows {
		err = insertBatch(db, rows) // one statement is atomic on its own
	} else {
		err = db.Transaction(func(tx *gorm.DB) error {
			for start := 0; start < len(rows); start += insertBatchRows {
				if err := insertBatch(tx, rows[start:min(start+insertBatchRows, len(rows))]); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err != nil {
		return nil, translate(op, err)
	}
	return inserted, nil
}

// insertMissingCopy is InsertMissing as COPY into a temporary staging table
// (dropped on commit) followed by one INSERT ... SELECT ... ON CONFLICT (id)
// DO NOTHING RETURNING id, all in one transaction on one pgx connection.
func (p *Postgres) insertMissingCopy(ctx context.Context, items []domain.Analysis) ([]uuid.UUID, error) {
	op := fmt.Sprintf("copy %d missing analyses", len(items))
	rows, err := prepareItems(items)
	if err != nil || len(rows) == 0 {
		return []uuid.UUID{}, err
	}
	inserted := make([]uuid.UUID, 0, len(rows))
	err = p.withPgx(ctx, func(c *pgx.Conn) error {
		return pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `CREATE TEMP TABLE analyses_staging (LIKE analyses) ON COMMIT DROP`); err != nil {
				return fmt.Errorf("create staging table: %w", err)
			}
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{"analyses_staging"}, copyColumns, copySource(rows)); err != nil {
				return fmt.Errorf("copy into staging: %w", err)
			}
			res, err := tx.Query(ctx, `INSERT INTO analyses (`+columns+`) SELECT `+columns+
				` FROM analyses_staging ON CONFLICT (id) DO NOTHING RETURNING id`)
			if err != nil {
				return fmt.Errorf("insert from staging: %w", err)
			}
			ids, err := pgx.CollectRows(res, pgx.RowTo[uuid.UUID])
			if err != nil {
				return fmt.Errorf("insert from staging: %w", err)
			}
			inserted = append(inserted, ids...)
			return nil
		})
	})
	if err != nil {
		return nil, translate(op, err)
	}
	return inserted, nil
}

// CopyAnalyses writes items with COPY straight into analyses and returns the
// number of rows written. There is no conflict handling: one taken id fails
// the whole copy (ECONFLICT). It is the fastest way in (seeding benchmarks)
// and the ceiling InsertMissing is measured against.
func (p *Postgres) CopyAnalyses(ctx context.Context, items []domain.Analysis) (int64, error) {
	op := fmt.Sprintf("copy %d analyses", len(items))
	rows, err := prepareItems(items)
	if err != nil || len(rows) == 0 {
		return 0, err
	}
	var n int64
	err = p.withPgx(ctx, func(c *pgx.Conn) error {
		var err error
		n, err = c.CopyFrom(ctx, pgx.Identifier{"analyses"}, copyColumns, copySource(rows))
		return err
	})
	if pgCode(err) == sqlstateUniqueViolation {
		return 0, domain.Wrap(domain.ECONFLICT, "Analysis already exists", fmt.Errorf("%s: %w", op, err))
	}
	return n, translate(op, err)
}

// copySource feeds rows to COPY without building an intermediate [][]any.
func copySource(rows []analysisRow) pgx.CopyFromSource {
	return pgx.CopyFromSlice(len(rows), func(i int) ([]any, error) {
		r := &rows[i]
		return []any{r.ID, r.OwnerID, r.URL, r.Title, string(r.Status), r.Summary, r.Score,
			[]string(r.Tags), r.Notes, r.Version, r.CreatedAt, r.UpdatedAt}, nil
	})
}

// withPgx runs fn on one pooled connection's underlying *pgx.Conn, for what
// database/sql cannot express (COPY).
func (p *Postgres) withPgx(ctx context.Context, fn func(*pgx.Conn) error) error {
	conn, err := p.sql.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		sc, ok := dc.(*stdlib.Conn)
		if !ok {
			return errors.New("postgres driver is not pgx stdlib")
		}
		return fn(sc.Conn())
	})
}
