package main

import (
	"context"
	"testing"
	"time"
)

// The watch keeps the peak of rows and of pending rows, overall and per
// turn: a turn's peak holds only what was sampled during that turn.
func TestOutboxWatchKeepsPeaksPerTurn(t *testing.T) {
	ctx := context.Background()
	d := migratedDatabase(t)
	insert := func(n int, applied bool) {
		t.Helper()
		if _, err := d.conn.Exec(ctx, `INSERT INTO cache_outbox (resource, analysis_ids, owner_ids, version, applied_at)
			SELECT 'analysis', ARRAY[gen_random_uuid()], ARRAY[gen_random_uuid()], 1, CASE WHEN $2 THEN now() END
			FROM generate_series(1, $1)`, n, applied); err != nil {
			t.Fatal(err)
		}
	}
	// waitFor polls the watch until cond holds on the peaks of label.
	waitFor := func(w *outboxWatch, label string, cond func(outboxSize, bool) bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			_, by, _ := w.peaks()
			s, ok := by[label]
			if cond(s, ok) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("turn %q: peaks %+v", label, by)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	insert(5, false)
	w, err := watchOutbox(ctx, d.url, 5*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer w.stop()
	w.turn("patch")
	insert(3, true)
	waitFor(w, "patch", func(s outboxSize, _ bool) bool { return s.Rows == 8 })
	if _, err := d.conn.Exec(ctx, "DELETE FROM cache_outbox"); err != nil {
		t.Fatal(err)
	}
	w.turn("post")
	waitFor(w, "post", func(_ outboxSize, ok bool) bool { return ok })
	if err := w.stop(); err != nil {
		t.Fatal(err)
	}
	peak, by, samples := w.peaks()
	if peak != (outboxSize{Rows: 8, Pending: 5}) {
		t.Errorf("overall peak = %+v, want 8 rows, 5 pending", peak)
	}
	if by[""] != (outboxSize{Rows: 5, Pending: 5}) {
		t.Errorf("peak before any turn = %+v, want 5 rows, 5 pending", by[""])
	}
	if by["patch"] != (outboxSize{Rows: 8, Pending: 5}) {
		t.Errorf("peak of patch = %+v, want 8 rows, 5 pending", by["patch"])
	}
	if by["post"] != (outboxSize{}) {
		t.Errorf("peak of post = %+v, want 0 (the log was emptied before its turn)", by["post"])
	}
	if samples < 3 {
		t.Errorf("%d samples", samples)
	}
}
