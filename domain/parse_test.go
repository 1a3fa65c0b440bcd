package domain

import (
	stdjson "encoding/json"
	"errors"
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

// TestParseAnalysisJSONAgreesWithEncodingJSON: ParseAnalysisJSON (goccy/go-json) reads
// back exactly what encoding/json reads, on the bytes AppendJSON writes, for the inputs where JSON decoders differ:
// escapes, control characters, invalid UTF-8 (written as U+FFFD), astral
// runes, nil and empty fields, float edge values, time zones and
// microseconds.
func TestParseAnalysisJSONAgreesWithEncodingJSON(t *testing.T) {
	str := func(s string) *string { return &s }
	num := func(f float64) *float64 { return &f }
	at := time.Date(2026, 11, 26, 10, 20, 30, 123456000, time.FixedZone("x", 3600))
	base := Analysis{ID: uuid.New(), OwnerID: uuid.New(), URL: "https://example.com/a?b=c&d=é",
		Title: "t", Status: StatusCompleted, Tags: []string{}, Version: 1, CreatedAt: at, UpdatedAt: at.Add(time.Microsecond)}
	awkward := []string{"", `quote " backslash \ slash /`, "ctrl \x00\x01\x1f\t\n\r", "bad \xff\xfe utf8",
		"emoji 😀 astral 𝄞", "html <>&\u2028\u2029", "ünïcödé"}
	var cases []Analysis
	for _, s := range awkward {
		a := base
		a.ID, a.Title, a.URL, a.Summary, a.Notes, a.Tags = uuid.New(), s, "u"+s, str("s"+s), str("n"+s), []string{s, "x"}
		cases = append(cases, a)
	}
	for _, f := range []float64{0, 1, 0.1, 1.0 / 3, 5e-324, 0.30000000000000004, 0.9999999999999999} {
		a := base
		a.ID, a.Score = uuid.New(), num(f)
		cases = append(cases, a)
	}
	nils := base
	nils.ID, nils.Tags = uuid.New(), nil
	cases = append(cases, nils)
	for _, a := range cases {
		body := a.AppendJSON(nil)
		want, werr := parseWithEncodingJSON(body)
		got, gerr := ParseAnalysisJSON(body)
		if (werr != nil) != (gerr != nil) || !reflect.DeepEqual(got, want) {
			t.Errorf("body %s\nParseAnalysisJSON = %+v, %v\nencoding/json     = %+v, %v", body, got, gerr, want, werr)
		}
	}
	for _, body := range []string{`{}`, `{"id":"not-a-uuid"}`, `{"id":`, `[]`} {
		_, werr := parseWithEncodingJSON([]byte(body))
		_, gerr := ParseAnalysisJSON([]byte(body))
		if (werr != nil) != (gerr != nil) || gerr == nil {
			t.Errorf("%s: ParseAnalysisJSON error %v, encoding/json error %v; want both to fail", body, gerr, werr)
		}
	}
}

// parseWithEncodingJSON is ParseAnalysisJSON on the standard library's
// decoder: the reference the faster one must agree with.
func parseWithEncodingJSON(body []byte) (Analysis, error) {
	var j analysisJSON
	if err := stdjson.Unmarshal(body, &j); err != nil {
		return Analysis{}, err
	}
	if j.ID == uuid.Nil {
		return Analysis{}, errors.New("no id")
	}
	return j.analysis(), nil
}
