package repository

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/analysis-cache/service/domain"
)

// The write statements. Each is ONE statement (one round trip, atomic by
// itself, no BEGIN/COMMIT): the change to analyses and the row of the
// invalidation log (cache_outbox) that records it, chained by a
// data-modifying CTE, so a committed change always has its invalidation on
// record and a change that did not commit never has one.

// logChange is the outbox insert shared by the single-row writes of
// analyses (LogChangeCTE); the first verb is the scope's parameter, the
// second whether it is a delete.
var logChange = LogChangeCTE(domain.AnalysisKind, "owner_id", "%s", "%s")

// LogChangeCTE returns the data-modifying CTE, named "o", that records in
// the invalidation log the change of the row the CTE named "w" returned
// (its id, groupColumn and version columns): append it to a single-row
// write's WITH clause and select o.id to get the log's id of the change.
// scopeParam and deleted are SQL expressions (a parameter like "$3", a
// literal like "true"); scopeParam must be Postgres.Scope(). The log holds
// ids and groups as uuid[]: the id and group columns must be uuids (a
// resource without groups passes its id column, and leaves its
// cache.Resource.Group empty, so no tag is derived from it).
func LogChangeCTE(resource, groupColumn, scopeParam, deleted string) string {
	return `, o AS (
  INSERT INTO cache_outbox (scope, resource, analysis_ids, owner_ids, version, deleted)
  SELECT ` + scopeParam + `::text, '` + resource + `', ARRAY[w.id], ARRAY[w.` + groupColumn + `], w.version, ` + deleted + ` FROM w
  RETURNING id)`
}

// createSQL inserts the row and logs it.
var createSQL = `WITH w AS (
  INSERT INTO analyses (` + columns + `)
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 1, $10, $10)
  RETURNING id, owner_id, version)` + fmt.Sprintf(logChange, "$11", "false") + `
SELECT o.id FROM o`

// updateSQL applies a patch in place and logs it, only when the version
// matches ($14, when not NULL) and the patch changes something: a no-op
// patch neither bumps the version nor logs anything. Postgres re-checks the
// WHERE clause on the latest row version after waiting for a concurrent
// writer's row lock, so concurrent patches serialize and none is lost.
//
//	$1 id   $2 url   $3 title   $4 status   ($2-$4 NULL: not sent)
//	$5/$6 tags set/value   $7/$8 summary   $9/$10 score   $11/$12 notes
//	$13 updated_at   $14 if-version (NULL: any)   $15 the log's scope
var updateSQL = `WITH w AS (
  UPDATE analyses SET
    url = COALESCE($2, url), title = COALESCE($3, title), status = COALESCE($4, status),
    tags = CASE WHEN $5 THEN $6::text[] ELSE tags END,
    summary = CASE WHEN $7 THEN $8::text ELSE summary END,
    score = CASE WHEN $9 THEN $10::float8 ELSE score END,
    notes = CASE WHEN $11 THEN $12::text ELSE notes END,
    version = version + 1, updated_at = $13
  WHERE id = $1 AND ($14::int8 IS NULL OR version = $14::int8) AND (
       ($2::text IS NOT NULL AND url IS DISTINCT FROM $2::text)
    OR ($3::text IS NOT NULL AND title IS DISTINCT FROM $3::text)
    OR ($4::text IS NOT NULL AND status IS DISTINCT FROM $4::text)
    OR ($5 AND tags IS DISTINCT FROM $6::text[])
    OR ($7 AND summary IS DISTINCT FROM $8::text)
    OR ($9 AND score IS DISTINCT FROM $10::float8)
    OR ($11 AND notes IS DISTINCT FROM $12::text))
  RETURNING ` + columns + `)` + fmt.Sprintf(logChange, "$15", "false") + `
SELECT ` + prefixed("w.") + `, o.id FROM w, o`

// deleteSQL deletes the row (at version $2 when not NULL) and logs it.
var deleteSQL = `WITH w AS (
  DELETE FROM analyses WHERE id = $1 AND ($2::int8 IS NULL OR version = $2::int8)
  RETURNING ` + columns + `)` + fmt.Sprintf(logChange, "$3", "true") + `
SELECT ` + prefixed("w.") + `, o.id FROM w, o`

// Create inserts a with Version 1 and CreatedAt = UpdatedAt = now, filling
// those fields of a, and logs the change in the same statement. Returns
// ECONFLICT if a.ID is taken.
func (p *Postgres) Create(ctx context.Context, a *domain.Analysis) (domain.Change, error) {
	op := "create analysis " + a.ID.String()
	t := now()
	tags := a.Tags
	if tags == nil {
		tags = []string{}
	}
	var change domain.Change
	err := p.withPgx(ctx, func(c *pgx.Conn) error {
		return c.QueryRow(ctx, createSQL, [16]byte(a.ID), [16]byte(a.OwnerID), a.URL, a.Title, string(a.Status),
			a.Summary, a.Score, tags, a.Notes, t, p.scope).Scan(&change.ID)
	})
	if err != nil {
		p.logStatementFailed(ctx, createSQL, err)
		return domain.Change{}, translate(op, err)
	}
	a.Version, a.CreatedAt, a.UpdatedAt, a.Tags = 1, t, t, tags
	return change, nil
}

// Update applies patch in one statement (see updateSQL). With ifVersion set
// and different from the stored version it returns EPRECONDITION and
// changes nothing. A patch that changes nothing returns the row unchanged
// (same version) and a zero Change. Returns ENOTFOUND.
func (p *Postgres) Update(ctx context.Context, id uuid.UUID, patch domain.AnalysisPatch, ifVersion *int64) (*domain.Analysis, domain.Change, error) {
	op := "update analysis " + id.String()
	var status *string
	if patch.Status != nil {
		s := string(*patch.Status)
		status = &s
	}
	var tags []string
	if patch.Tags != nil {
		tags = *patch.Tags
		if tags == nil {
			tags = []string{}
		}
	}
	args := []any{[16]byte(id), patch.URL, patch.Title, status,
		patch.Tags != nil, tags, patch.Summary.Set, patch.Summary.Value, patch.Score.Set, patch.Score.Value,
		patch.Notes.Set, patch.Notes.Value, now(), ifVersion, p.scope}
	var a *domain.Analysis
	var change domain.Change
	err := p.withPgx(ctx, func(c *pgx.Conn) error {
		var err error
		a, err = scanAnalysis(c.QueryRow(ctx, updateSQL, args...), &change.ID)
		if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		// Nothing updated: no such row, another version, or a no-op patch.
		a, err = scanAnalysis(c.QueryRow(ctx, "SELECT "+columns+" FROM analyses WHERE id = $1", [16]byte(id)))
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return notFound(op)
		case err != nil:
			return err
		case ifVersion != nil && *ifVersion != a.Version:
			return preconditionFailed(op, *ifVersion, a.Version)
		}
		return nil
	})
	if err != nil {
		p.logStatementFailed(ctx, updateSQL, err)
		return nil, domain.Change{}, translate(op, err)
	}
	return a, change, nil
}

// Delete removes the analysis in one statement that also logs the change,
// and returns the analysis as it was. With ifVersion set and different from
// the stored version it returns EPRECONDITION and deletes nothing; the
// version check lives in the DELETE itself, so no update can slip in
// between check and delete. Returns ENOTFOUND.
func (p *Postgres) Delete(ctx context.Context, id uuid.UUID, ifVersion *int64) (*domain.Analysis, domain.Change, error) {
	op := "delete analysis " + id.String()
	var a *domain.Analysis
	var change domain.Change
	err := p.withPgx(ctx, func(c *pgx.Conn) error {
		// Only when nothing was deleted under If-Match does a second look
		// tell "gone" from "other version"; if the row is back at the
		// wanted version (deleted and re-ingested meanwhile), try again.
		for attempt := 0; ; attempt++ {
			var err error
			a, err = scanAnalysis(c.QueryRow(ctx, deleteSQL, [16]byte(id), ifVersion, p.scope), &change.ID)
			if !errors.Is(err, pgx.ErrNoRows) {
				return err
			}
			if ifVersion == nil {
				return notFound(op)
			}
			var version int64
			err = c.QueryRow(ctx, "SELECT version FROM analyses WHERE id = $1", [16]byte(id)).Scan(&version)
			switch {
			case errors.Is(err, pgx.ErrNoRows):
				return notFound(op)
			case err != nil:
				return err
			case version != *ifVersion || attempt == 2:
				return preconditionFailed(op, *ifVersion, version)
			}
		}
	})
	if err != nil {
		p.logStatementFailed(ctx, deleteSQL, err)
		return nil, domain.Change{}, translate(op, err)
	}
	return a, change, nil
}

// scanAnalysis scans one row of columns (then extra destinations) into an
// analysis, timestamps in UTC and tags never nil.
func scanAnalysis(row pgx.Row, extra ...any) (*domain.Analysis, error) {
	var a domain.Analysis
	var status string
	dest := append([]any{(*[16]byte)(&a.ID), (*[16]byte)(&a.OwnerID), &a.URL, &a.Title, &status,
		&a.Summary, &a.Score, &a.Tags, &a.Notes, &a.Version, &a.CreatedAt, &a.UpdatedAt}, extra...)
	if err := row.Scan(dest...); err != nil {
		return nil, err
	}
	a.Status = domain.Status(status)
	a.CreatedAt, a.UpdatedAt = a.CreatedAt.UTC(), a.UpdatedAt.UTC()
	if a.Tags == nil {
		a.Tags = []string{}
	}
	return &a, nil
}
