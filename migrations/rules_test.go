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
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pressly/goose/v3"

	"github.com/analysis-cache/service/domain"
)

// notCheckedBySQL are the declared rules the schema leaves to the API
// (domain/rules.go), by field and rule. TestChecksAgreeWithFieldRules fails
// when one of them is in fact checked (remove it here) and when a rule not
// listed is not (a CHECK is missing or disagrees).
var notCheckedBySQL = map[string]bool{
	// Postgres's regular expressions are not Pydantic's (Rust's regex
	// crate): a CHECK could refuse a url the API accepts.
	"url pattern": true,
}

// TestChecksAgreeWithFieldRules inserts, for every declared rule of an
// analysis field, the boundary value and the one just beyond it into a
// migrated database: the boundary must be stored (the database never
// refuses what the API accepts), and the value beyond it must be refused by
// a CHECK or NOT NULL constraint unless the rule is in notCheckedBySQL.
// Nullability (of list items too), enum values, numeric bounds and
// lengths are all checked this way.
func TestChecksAgreeWithFieldRules(t *testing.T) {
	ctx := context.Background()
	db := migratedDatabase(t)
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
			for _, fill := range fills {
				if f.MaxLength > 0 {
					rule(col, "maxLength", val(text(f, f.MaxLength, fill)), val(text(f, f.MaxLength+1, fill)))
				}
				if f.MinLength > 0 {
					rule(col, "minLength", val(text(f, f.MinLength, fill)), val(text(f, f.MinLength-1, fill)))
				}
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
				if !it.Nullable && !probe(col, []*string{nil}) {
					t.Errorf("%s: items are not nullable, but a NULL item is stored", col)
				}
				for _, fill := range fills {
					if it.MaxLength > 0 {
						rule(col, "items maxLength", val([]string{text(it, it.MaxLength, fill)}), val([]string{text(it, it.MaxLength+1, fill)}))
					}
					if it.MinLength > 0 {
						rule(col, "items minLength", val([]string{text(it, it.MinLength, fill)}), val([]string{text(it, it.MinLength-1, fill)}))
					}
					if f.MaxLength > 0 && it.MaxLength > 0 {
						largest := make([]string, f.MaxLength)
						for i := range largest {
							largest[i] = text(it, it.MaxLength, fill)
						}
						if probe(col, largest) {
							t.Errorf("%s: %d items of %d characters, the declared largest, are refused", col, f.MaxLength, it.MaxLength)
						}
					}
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

// fills are the characters the length probes are made of: a multi-byte one,
// where a CHECK counting bytes rather than characters disagrees, and an
// ASCII one, where a shortcut bounding bytes (as the tags items CHECK has)
// disagrees.
var fills = []string{"é", "x"}

// text is a string of n characters fill for f; a pattern field's starts
// with a matching prefix.
func text(f *domain.Field, n int, fill string) string {
	prefix := ""
	if f.Pattern != "" && n >= len("https://x") {
		prefix = "https://"
	}
	return prefix + strings.Repeat(fill, n-len(prefix))
}

func short(v any) string {
	s := fmt.Sprint(v)
	if len(s) > 40 {
		cut := 40
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut-- // not inside a character
		}
		return fmt.Sprintf("%s… (%d bytes)", s[:cut], len(s))
	}
	return s
}

// TestLengthsOnStoredRows applies 00004_analysis_lengths.sql to a table
// holding a row that breaks a length rule: VALIDATE refuses it, naming the
// constraint, goose records no version 4, and the constraints added NOT
// VALID already refuse new rows that break them. Once the row is fixed, Up
// runs the file again from the top and every constraint ends validated.
func TestLengthsOnStoredRows(t *testing.T) {
	ctx := context.Background()
	db, err := sql.Open("pgx", freshDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	provider, err := goose.NewProvider(goose.DialectPostgres, db, files)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := provider.UpTo(ctx, 3); err != nil {
		t.Fatalf("up to 3: %v", err)
	}
	insert := `INSERT INTO analyses (id, owner_id, url, title, status, tags, created_at, updated_at)
		VALUES (gen_random_uuid(), gen_random_uuid(), 'https://x', 't', 'pending', $1::text[], now(), now())`
	long := strings.Repeat("x", domain.TagsField.Items.MaxLength+1)
	if _, err := db.ExecContext(ctx, insert, []string{long}); err != nil {
		t.Fatalf("row stored before 00004: %v", err)
	}

	err = Up(ctx, db)
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "23514" || pgErr.ConstraintName != "analyses_tags_items_check" {
		t.Fatalf("Up over a stored row breaking the tags rule: %v, want a 23514 naming analyses_tags_items_check", err)
	}
	var version int64
	if err := db.QueryRowContext(ctx, "SELECT max(version_id) FROM goose_db_version WHERE is_applied").Scan(&version); err != nil || version != 3 {
		t.Fatalf("recorded version %d, %v; want 3", version, err)
	}
	if _, err := db.ExecContext(ctx, insert, []string{long}); !errors.As(err, &pgErr) || pgErr.Code != "23514" {
		t.Fatalf("new row breaking the tags rule after the failed migration: %v, want 23514", err)
	}

	if _, err := db.ExecContext(ctx, "UPDATE analyses SET tags = '{x}'"); err != nil {
		t.Fatal(err)
	}
	if err := Up(ctx, db); err != nil {
		t.Fatalf("Up once the row is fixed: %v", err)
	}
	var notValid []string
	rows, err := db.QueryContext(ctx, `SELECT conname FROM pg_constraint
		WHERE conrelid = 'analyses'::regclass AND contype = 'c' AND NOT convalidated`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		notValid = append(notValid, name)
	}
	if err := rows.Err(); err != nil || len(notValid) > 0 {
		t.Fatalf("constraints not validated: %v, %v", notValid, err)
	}
}
