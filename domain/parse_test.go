package domain

import (
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"
)

func TestParseIsTheInverseOfAppendJSON(t *testing.T) {
	score, summary, notes := 0.30000000000000004, "sum \"q\" \n ✓", "secret"
	full := Analysis{
		ID: uuid.New(), OwnerID: uuid.New(), URL: "https://x.io/a?b=c", Title: "t\u2028", Status: StatusFailed,
		Summary: &summary, Score: &score, Tags: []string{"a", "é"}, Notes: &notes, Version: 7,
		CreatedAt: time.Date(2026, 11, 26, 10, 20, 30, 123456000, time.UTC),
		UpdatedAt: time.Date(2026, 11, 26, 10, 20, 31, 0, time.UTC),
	}
	bare := Analysis{ID: uuid.New(), OwnerID: uuid.New(), URL: "http://y", Title: "b", Status: StatusPending,
		Tags: []string{}, Version: 1, CreatedAt: full.CreatedAt, UpdatedAt: full.CreatedAt}
	for _, a := range []Analysis{full, bare} {
		got, err := ParseAnalysisJSON(a.AppendJSON(nil))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, a) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, a)
		}
	}
	page := Page{Data: []Analysis{full, bare}, Count: 12}
	got, err := ParsePageJSON(page.AppendJSON(nil))
	if err != nil || !reflect.DeepEqual(got, page) {
		t.Fatalf("page round trip: %v\n got %+v\nwant %+v", err, got, page)
	}
	if _, err := ParseAnalysisJSON([]byte(`{"title":"no id"}`)); err == nil {
		t.Fatal("a body without an id must not parse")
	}
}
