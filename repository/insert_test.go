package repository

import (
	"context"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/analysis-cache/service/domain"
	"github.com/analysis-cache/service/repository/repotest"
)

// TestInsertMissingLargeBatch: one statement takes a batch far beyond the
// 65535 bind parameters a multi-row VALUES INSERT could carry (12 per row),
// and a replay inserts nothing.
func TestInsertMissingLargeBatch(t *testing.T) {
	p := openTestRepo(t, nil)
	repotest.TruncateAnalyses(t, p.sql)
	ctx := context.Background()
	items := seedItems(65535/12+1000, uuid.New())
	ids, _, err := p.InsertMissing(ctx, items)
	if err != nil || len(ids) != len(items) {
		t.Fatalf("first insert: %d ids, %v; want %d", len(ids), err, len(items))
	}
	ids, _, err = p.InsertMissing(ctx, items)
	if err != nil || len(ids) != 0 {
		t.Fatalf("replay: %d ids, %v; want 0", len(ids), err)
	}
}

// TestInsertMissingTagsRoundTrip: tags travel as text[] literals, so every
// character the literal syntax gives a meaning to must come back as sent.
func TestInsertMissingTagsRoundTrip(t *testing.T) {
	p := openTestRepo(t, nil)
	repotest.TruncateAnalyses(t, p.sql)
	ctx := context.Background()
	tagSets := [][]string{
		nil,
		{},
		{"NULL", "null"},
		{`a,b`, `{c}`, `"d"`, `e\f`, `\`, `"`, "  spaced  ", "new\nline"},
		{"ünïcödé", "😀", "tab\there"},
	}
	owner := uuid.New()
	items := make([]domain.Analysis, len(tagSets))
	for i, tags := range tagSets {
		items[i] = repotest.NewAnalysis(owner, "tags")
		items[i].Tags = tags
	}
	if ids, _, err := p.InsertMissing(ctx, items); err != nil || len(ids) != len(items) {
		t.Fatalf("InsertMissing: %d ids, %v", len(ids), err)
	}
	// An empty tag travels as an element too (`{""}`, not `{}`): the schema
	// refuses it (tags items minLength).
	empty := repotest.NewAnalysis(owner, "tags")
	empty.Tags = []string{"x", ""}
	if _, _, err := p.InsertMissing(ctx, []domain.Analysis{empty}); domain.ErrorCode(err) != domain.EINVALID {
		t.Errorf("InsertMissing of an empty tag: %v, want EINVALID", err)
	}
	for i, tags := range tagSets {
		got, err := p.Get(ctx, items[i].ID)
		if err != nil {
			t.Fatal(err)
		}
		want := tags
		if want == nil {
			want = []string{}
		}
		if strings.Join(got.Tags, "\x00") != strings.Join(want, "\x00") || len(got.Tags) != len(want) {
			t.Errorf("tags %q came back as %q", want, got.Tags)
		}
	}
}

// TestInsertMissingConstraintFailsWholeBatch: a row that violates a CHECK
// fails the statement with EINVALID and nothing of the batch is stored
// (the flusher bisects on that error to isolate the row).
func TestInsertMissingConstraintFailsWholeBatch(t *testing.T) {
	p := openTestRepo(t, nil)
	repotest.TruncateAnalyses(t, p.sql)
	items := seedItems(3, uuid.New())
	items[1].Status = "bogus"
	if _, _, err := p.InsertMissing(context.Background(), items); domain.ErrorCode(err) != domain.EINVALID {
		t.Fatalf("err %v, want EINVALID", err)
	}
	if _, err := p.Get(context.Background(), items[0].ID); domain.ErrorCode(err) != domain.ENOTFOUND {
		t.Errorf("a failed batch stored a row: %v", err)
	}
}

func TestInsertMissingRejectsDuplicateIDs(t *testing.T) {
	p := openTestRepo(t, nil)
	repotest.TruncateAnalyses(t, p.sql)
	items := seedItems(3, uuid.New())
	items[2].ID = items[0].ID
	_, _, err := p.InsertMissing(context.Background(), items)
	if domain.ErrorCode(err) != domain.EINVALID || !strings.Contains(err.Error(), items[0].ID.String()) {
		t.Errorf("err %v, want EINVALID naming %s", err, items[0].ID)
	}
	if _, err := p.Get(context.Background(), items[1].ID); domain.ErrorCode(err) != domain.ENOTFOUND {
		t.Errorf("a batch with a duplicate stored something: %v", err)
	}
}
