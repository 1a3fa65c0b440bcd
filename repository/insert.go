package repository

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/analysis-cache/service/domain"
)

// copyColumns are the columns COPY writes, in table order.
var copyColumns = strings.Split(columns, ", ")

// InsertMissing inserts the items whose id is not stored yet and returns
// those ids, atomically; rows that exist are left untouched, so replaying a
// batch inserts nothing. Items must have distinct ids: a duplicate is a
// caller bug and returns EINVALID naming the id. Version < 1 is stored as 1
// and zero timestamps as now. A row that violates a constraint fails the
// whole batch with EINVALID (the write-behind flusher bisects to find it).
//
// It is one INSERT ... SELECT FROM unnest(...) ON CONFLICT (id) DO NOTHING
// RETURNING id statement on a pgx connection, whatever the batch size
// (insertUnnestSQL). Measured against the two designs it replaced, a
// gorm-built multi-row VALUES statement and COPY into a temporary staging
// table, it is the fastest at 100, 1000 and 10000 rows (docs/postgres.md).
func (p *Postgres) InsertMissing(ctx context.Context, items []domain.Analysis) ([]uuid.UUID, domain.Change, error) {
	op := fmt.Sprintf("insert %d missing analyses", len(items))
	if len(items) == 0 {
		return []uuid.UUID{}, domain.Change{}, nil
	}
	rows, err := prepareItems(items)
	if err != nil {
		return nil, domain.Change{}, err
	}
	cols := newUnnestColumns(rows)
	inserted := make([]uuid.UUID, 0, len(items))
	var change domain.Change
	err = p.withPgx(ctx, func(c *pgx.Conn) error {
		rows, err := c.Query(ctx, insertLoggedSQL, append(cols.args(), p.scope)...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id uuid.UUID
			// binary, not uuid's sql.Scanner
			if err := rows.Scan((*[16]byte)(&id), &change.ID); err != nil {
				return err
			}
			inserted = append(inserted, id)
		}
		return rows.Err()
	})
	if err != nil {
		p.logStatementFailed(ctx, insertLoggedSQL, err)
		return nil, domain.Change{}, translate(op, err)
	}
	return inserted, change, nil
}

// prepareItems checks ids are distinct and normalizes the rows that
// InsertMissing and COPY store: version at least 1, zero timestamps now,
// UTC, microseconds.
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
