package repository

import (
	"database/sql/driver"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/analysis-cache/service/domain"
)

// analysisRow is the gorm model of one row of analyses. It exists so that
// the domain type carries no gorm tags; toDomain/fromDomain are the only
// places where the two meet.
type analysisRow struct {
	ID        uuid.UUID     `gorm:"column:id;type:uuid;primaryKey"`
	OwnerID   uuid.UUID     `gorm:"column:owner_id;type:uuid"`
	URL       string        `gorm:"column:url"`
	Title     string        `gorm:"column:title"`
	Status    domain.Status `gorm:"column:status;type:text"`
	Summary   *string       `gorm:"column:summary"`
	Score     *float64      `gorm:"column:score"`
	Tags      textArray     `gorm:"column:tags;type:text[]"`
	Notes     *string       `gorm:"column:notes"`
	Version   int64         `gorm:"column:version"`
	CreatedAt time.Time     `gorm:"column:created_at;autoCreateTime:false"`
	UpdatedAt time.Time     `gorm:"column:updated_at;autoUpdateTime:false"`
}

// TableName pins the table name instead of relying on gorm's pluralizer.
func (analysisRow) TableName() string { return "analyses" }

// columns is the select list matching analysisRow, in table order.
const columns = "id, owner_id, url, title, status, summary, score, tags, notes, version, created_at, updated_at"

// prefixed returns columns with each name qualified by prefix ("w.id, w.owner_id, ...").
func prefixed(prefix string) string {
	return prefix + strings.ReplaceAll(columns, ", ", ", "+prefix)
}

func fromDomain(a *domain.Analysis) analysisRow {
	tags := a.Tags
	if tags == nil {
		tags = []string{} // NOT NULL column: nil would be sent as NULL
	}
	return analysisRow{
		ID: a.ID, OwnerID: a.OwnerID, URL: a.URL, Title: a.Title, Status: a.Status,
		Summary: a.Summary, Score: a.Score, Tags: textArray(tags), Notes: a.Notes,
		Version: a.Version, CreatedAt: a.CreatedAt, UpdatedAt: a.UpdatedAt,
	}
}

func (r *analysisRow) toDomain() *domain.Analysis {
	tags := []string(r.Tags)
	if tags == nil {
		tags = []string{}
	}
	return &domain.Analysis{
		ID: r.ID, OwnerID: r.OwnerID, URL: r.URL, Title: r.Title, Status: r.Status,
		Summary: r.Summary, Score: r.Score, Tags: tags, Notes: r.Notes,
		Version: r.Version, CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(),
	}
}

// now is the timestamp the repository stores: UTC with the microsecond
// precision Postgres keeps, so the value a caller holds after a write equals
// the value a later read returns.
func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

// textArray is a Postgres text[] column.
//
// It is a driver.Valuer because gorm expands a plain slice argument into a
// row constructor ($1,$2,...); a Valuer is bound as one parameter. Scan is
// needed because database/sql hands pgx's text[] over as its text
// representation ({a,"b c"}), which pgx's own array codec parses.
type textArray []string

// Value implements driver.Valuer: the array literal with every element
// quoted, so no element is read as NULL or split.
func (t textArray) Value() (driver.Value, error) {
	var b strings.Builder // nil writes {}: the column is NOT NULL, nil means no tags
	appendTextArrayLiteral(&b, t)
	return b.String(), nil
}

// typeMaps lends pgx type maps to Scan: a pgtype.Map caches its scan
// plans and is not safe for concurrent use.
var typeMaps = sync.Pool{New: func() any { return pgtype.NewMap() }}

// Scan implements sql.Scanner for Postgres' text[] output, parsed by pgx
// (quoting, escapes, a NULL element refused: a tag is never NULL).
func (t *textArray) Scan(src any) error {
	if src == nil {
		*t = nil
		return nil
	}
	m := typeMaps.Get().(*pgtype.Map)
	defer typeMaps.Put(m)
	var out []string
	if err := m.SQLScanner(&out).Scan(src); err != nil {
		return fmt.Errorf("scan text[]: %w", err)
	}
	*t = out
	return nil
}
