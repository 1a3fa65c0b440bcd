package repository

import (
	"database/sql/driver"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

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
// representation ({a,"b c"}).
type textArray []string

// Value implements driver.Valuer: the array literal with every element
// quoted, so no element is read as NULL or split.
func (t textArray) Value() (driver.Value, error) {
	var b strings.Builder // nil writes {}: the column is NOT NULL, nil means no tags
	appendTextArrayLiteral(&b, t)
	return b.String(), nil
}

// Scan implements sql.Scanner for Postgres' one-dimensional text[] output.
func (t *textArray) Scan(src any) error {
	var s string
	switch v := src.(type) {
	case nil:
		*t = nil
		return nil
	case string:
		s = v
	case []byte:
		s = string(v)
	default:
		return fmt.Errorf("scan text[]: unsupported source %T", src)
	}
	out, err := parseTextArray(s)
	if err != nil {
		return fmt.Errorf("scan text[] %q: %w", s, err)
	}
	*t = out
	return nil
}

// parseTextArray parses the text output of a one-dimensional text[]:
// elements separated by commas, quoted with "..." (backslash escapes inside)
// when they contain special characters or are empty. An unquoted NULL is a
// null element, which this schema never stores, so it is rejected.
func parseTextArray(s string) ([]string, error) {
	if len(s) < 2 || s[0] != '{' || s[len(s)-1] != '}' {
		return nil, fmt.Errorf("not an array literal")
	}
	body := s[1 : len(s)-1]
	out := []string{}
	if body == "" {
		return out, nil
	}
	for i := 0; ; {
		var elem strings.Builder
		if i < len(body) && body[i] == '"' {
			i++
			for {
				if i >= len(body) {
					return nil, fmt.Errorf("unterminated quoted element")
				}
				c := body[i]
				if c == '\\' && i+1 < len(body) {
					elem.WriteByte(body[i+1])
					i += 2
					continue
				}
				i++
				if c == '"' {
					break
				}
				elem.WriteByte(c)
			}
		} else {
			j := strings.IndexByte(body[i:], ',')
			if j < 0 {
				j = len(body) - i
			}
			raw := body[i : i+j]
			if raw == "NULL" {
				return nil, fmt.Errorf("null element")
			}
			if strings.ContainsAny(raw, "{}\"") {
				return nil, fmt.Errorf("multi-dimensional or malformed array")
			}
			elem.WriteString(raw)
			i += j
		}
		out = append(out, elem.String())
		if i == len(body) {
			return out, nil
		}
		if body[i] != ',' {
			return nil, fmt.Errorf("expected ',' at %d", i)
		}
		i++
	}
}
