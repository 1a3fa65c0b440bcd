package migrations

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/analysis-cache/service/domain"
)

// notCheckedBySQL are the declared rules the schema leaves to the API
// (domain/rules.go), by field and rule. TestChecksAgreeWithFieldRules fails
// when one of them is in fact checked (remove it here) and when a rule not
// listed is not (a CHECK is missing or disagrees).
var notCheckedBySQL = map[string]bool{
	"url minLength": true, "url maxLength": true, "url pattern": true,
	"title minLength": true, "title maxLength": true,
	"summary maxLength": true, "notes maxLength": true,
	"tags maxLength": true, "tags items minLength": true, "tags items maxLength": true,
}

// TestChecksAgreeWithFieldRules inserts, for every declared rule of an
// analysis field, the boundary value and the one just beyond it into a
// migrated database: the boundary must be stored (the database never
// refuses what the API accepts), and the value beyond it must be refused by
// a CHECK or NOT NULL constraint unless the rule is in notCheckedBySQL.
// Nullability, enum values and numeric bounds are all checked this way.
func TestChecksAgreeWithFieldRules(t *testing.T) {
	ctx := context.Background()
	db, err := sql.Open("pgx", freshDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := Up(ctx, db); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	// probe inserts a valid row with column = value; rejected reports
	// whether a constraint refused it (any other error fails the test).
	probe := func(column string, value any) (rejected bool) {
		t.Helper()
		row := map[string]any{
			"id": uuid.NewString(), "owner_id": uuid.NewString(), "url": "https://x", "title": "t",
			"status": "pending", "summary": nil, "score": nil, "tags": []string{}, "notes": nil,
			"version": 1, "created_at": time.Now(), "updated_at": time.Now(),
		}
		if _, ok := row[column]; !ok {
			t.Fatalf("field %s has no column of that name", column)
		}
		row[column] = value
		_, err := db.ExecContext(ctx, `INSERT INTO analyses (id, owner_id, url, title, status, summary, score, tags, notes, version, created_at, updated_at)
			VALUES ($1::uuid, $2::uuid, $3, $4, $5, $6, $7::float8, $8::text[], $9, $10::int8, $11, $12)`,
			row["id"], row["owner_id"], row["url"], row["title"], row["status"], row["summary"], row["score"],
			row["tags"], row["notes"], row["version"], row["created_at"], row["updated_at"])
		var pgErr *pgconn.PgError
		switch {
		case err == nil:
			return false
		case errors.As(err, &pgErr) && (pgErr.Code == "23514" || pgErr.Code == "23502"): // check_violation, not_null_violation
			return true
		default:
			t.Fatalf("insert %s = %v: %v", column, value, err)
			return false
		}
	}
	// rule checks one declared rule: within must be stored, beyond refused
	// (or, for a rule the schema leaves to the API, stored).
	rule := func(field, name string, within, beyond func() (string, any)) {
		t.Helper()
		key := field + " " + name
		seen[key] = true
		if within != nil {
			if col, v := within(); probe(col, v) {
				t.Errorf("%s: the declared boundary %v is refused by the schema", key, short(v))
			}
		}
		col, v := beyond()
		switch rejected := probe(col, v); {
		case !rejected && !notCheckedBySQL[key]:
			t.Errorf("%s: %v, beyond the declaration, is stored: the CHECK is missing or disagrees", key, short(v))
		case rejected && notCheckedBySQL[key]:
			t.Errorf("%s: the schema checks it: remove it from notCheckedBySQL", key)
		}
	}

	for _, f := range domain.AnalysisFields {
		col := f.Name
		val := func(v any) func() (string, any) { return func() (string, any) { return col, v } }
		// null: stored exactly when the field is nullable.
		if f.Nullable {
			if probe(col, nil) {
				t.Errorf("%s: nullable, but the column is NOT NULL", col)
			}
		} else if !probe(col, nil) {
			t.Errorf("%s: not nullable, but the column takes NULL", col)
		}
		switch f.Kind {
		case domain.KindString:
			if f.MaxLength > 0 {
				rule(col, "maxLength", val(text(f, f.MaxLength)), val(text(f, f.MaxLength+1)))
			}
			if f.MinLength > 0 {
				rule(col, "minLength", val(text(f, f.MinLength)), val(text(f, f.MinLength-1)))
			}
			if f.Pattern != "" {
				rule(col, "pattern", val("https://x"), val("ftp://x"))
			}
		case domain.KindNumber, domain.KindInteger:
			step := func(x, toward float64) any {
				if f.Kind == domain.KindInteger {
					return int64(x) + int64(math.Copysign(1, toward-x))
				}
				return math.Nextafter(x, toward)
			}
			at := func(x float64) any {
				if f.Kind == domain.KindInteger {
					return int64(x)
				}
				return x
			}
			if f.Minimum != nil {
				rule(col, "minimum", val(at(*f.Minimum)), val(step(*f.Minimum, math.Inf(-1))))
			}
			if f.Maximum != nil {
				rule(col, "maximum", val(at(*f.Maximum)), val(step(*f.Maximum, math.Inf(1))))
			}
		case domain.KindEnum:
			for _, v := range f.Enum {
				if probe(col, v) {
					t.Errorf("%s: the declared value %q is refused", col, v)
				}
			}
			rule(col, "enum", nil, val(strings.Join(f.Enum, "")))
		case domain.KindList:
			items := func(n int) []string { return strings.Split(strings.Repeat("x,", n)+"x", ",")[:n] }
			if f.MaxLength > 0 {
				rule(col, "maxLength", val(items(f.MaxLength)), val(items(f.MaxLength+1)))
			}
			if it := f.Items; it != nil && it.Kind == domain.KindString {
				if it.MaxLength > 0 {
					rule(col, "items maxLength", val([]string{text(it, it.MaxLength)}), val([]string{text(it, it.MaxLength+1)}))
				}
				if it.MinLength > 0 {
					rule(col, "items minLength", val([]string{text(it, it.MinLength)}), val([]string{text(it, it.MinLength-1)}))
				}
			}
		}
	}
	for key := range notCheckedBySQL {
		if !seen[key] {
			t.Errorf("notCheckedBySQL lists %q, which no declaration has", key)
		}
	}
}

// text is a string of n characters for f: multi-byte, so a CHECK counting
// bytes rather than characters disagrees here; a pattern field's starts
// with a matching prefix.
func text(f *domain.Field, n int) string {
	prefix := ""
	if f.Pattern != "" && n >= len("https://x") {
		prefix = "https://"
	}
	return prefix + strings.Repeat("é", n-len(prefix))
}

func short(v any) string {
	s := fmt.Sprint(v)
	if len(s) > 40 {
		return fmt.Sprintf("%s… (%d bytes)", s[:40], len(s))
	}
	return s
}
