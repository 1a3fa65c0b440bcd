package repository

import (
	"context"
	"strings"

	"github.com/google/uuid"

	"github.com/analysis-cache/service/domain"
)

// pageRow is one row of the page query: the analysis plus the count of all
// matches, computed once per statement by an uncorrelated subquery.
type pageRow struct {
	Row   analysisRow `gorm:"embedded"`
	Total int64       `gorm:"column:total"`
}

// List returns the page filter selects and the count of all matches,
// ordered by created_at DESC, id DESC.
//
// One statement, one round trip: the page is read in index order and stops
// after skip+limit rows, and the count is an uncorrelated scalar subquery
// (an InitPlan, evaluated once, index-only where the visibility map allows).
// count(*) OVER () is not used: it would fetch every matching row to count
// it, and it yields no row (so no count) for a page past the end. When the
// page is empty past the end, a second statement counts.
//
// A tag holding U+0000 matches nothing: Postgres text cannot store the
// character (so no row has it) and refuses it as a parameter, so the page
// is empty without a query.
func (p *Postgres) List(ctx context.Context, f domain.ListFilter) (domain.Page, error) {
	op := "list analyses"
	if f.Tag != nil && strings.IndexByte(*f.Tag, 0) >= 0 {
		return domain.Page{Data: []domain.Analysis{}}, nil
	}
	where, args := listWhere(f)
	limit := f.Limit
	if limit <= 0 {
		limit = domain.DefaultPageLimit
	}
	skip := max(f.Skip, 0)

	q := "SELECT " + columns + ", (SELECT count(*) FROM analyses" + where + ") AS total" +
		" FROM analyses" + where +
		" ORDER BY created_at DESC, id DESC OFFSET ? LIMIT ?"
	// where appears twice, so its arguments do too.
	all := make([]any, 0, 2*len(args)+2)
	all = append(append(append(all, args...), args...), skip, limit)

	var rows []pageRow
	db := p.db.WithContext(ctx)
	if err := query(db, &rows, q, all...); err != nil {
		return domain.Page{}, translate(op, err)
	}
	page := domain.Page{Data: make([]domain.Analysis, len(rows))}
	for i := range rows {
		page.Data[i] = *rows[i].Row.toDomain()
	}
	switch {
	case len(rows) > 0:
		page.Count = rows[0].Total
	case skip > 0:
		if err := query(db, &page.Count, "SELECT count(*) FROM analyses"+where, args...); err != nil {
			return domain.Page{}, translate(op, err)
		}
	}
	return page, nil
}

// ListByOwner is List filtered by owner only.
func (p *Postgres) ListByOwner(ctx context.Context, ownerID uuid.UUID, skip, limit int) (domain.Page, error) {
	return p.List(ctx, domain.ListFilter{OwnerID: &ownerID, Skip: skip, Limit: limit})
}

// listWhere builds the WHERE clause of the filters that are set. Absent
// filters are left out of the SQL rather than written as "$1 IS NULL OR ...",
// which would keep a generic prepared plan off the indexes. The tag filter
// is `tags @> ARRAY[?]`, the form the GIN index serves (`? = ANY(tags)` is
// not indexable).
func listWhere(f domain.ListFilter) (string, []any) {
	var conds []string
	var args []any
	if f.OwnerID != nil {
		conds = append(conds, "owner_id = ?")
		args = append(args, *f.OwnerID)
	}
	if f.Status != nil {
		conds = append(conds, "status = ?")
		args = append(args, string(*f.Status))
	}
	if f.Tag != nil {
		conds = append(conds, "tags @> ARRAY[?]::text[]")
		args = append(args, *f.Tag)
	}
	if len(conds) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}
