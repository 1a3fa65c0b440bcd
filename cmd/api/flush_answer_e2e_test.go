package main

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/analysis-cache/service/internal/testenv"
)

// TestFlushAnswerCountsPendingAtArrival pins what README.md says of the
// admin flush's {"flushed": N}: N counts the entries pending when the call
// arrived that are in Postgres when it answers, whoever committed them. An
// item the background flusher committed before the call arrived was not
// pending then: a flush called afterwards answers {"flushed":0} (the race
// with a concurrent flusher is TestWriteBehindFlushCountsWhatOthersCommitted
// in cache/).
func TestFlushAnswerCountsPendingAtArrival(t *testing.T) {
	// A stream of its own: no other test's entries in the counts.
	base := startServer(t, map[string]string{"CACHE_PREFIX": testenv.Get(t).UniquePrefix("flushanswer")})
	admin := []string{"Authorization", "Bearer " + testAdminToken}
	owner := uuid.New()
	resp, body := call(t, http.MethodPost, base+"/api/v1/analyses/bulk",
		`{"items":[{"owner_id":"`+owner.String()+`","url":"https://example.com/1","title":"one"}]}`)
	expect(t, resp, body, http.StatusAccepted)
	var accepted struct{ IDs []uuid.UUID }
	if err := json.Unmarshal(body, &accepted); err != nil || len(accepted.IDs) != 1 {
		t.Fatalf("bulk answer %s: %v", body, err)
	}

	// The background flusher reads the stream as entries arrive; wait until
	// it has committed and settled (the stream is empty again).
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, body := call(t, http.MethodGet, base+"/api/v1/cache/stats", "", admin...)
		expect(t, resp, body, http.StatusOK)
		var stats struct {
			WriteBehind struct{ Pending, Flushed int64 } `json:"write_behind"`
		}
		if err := json.Unmarshal(body, &stats); err != nil {
			t.Fatal(err)
		}
		if stats.WriteBehind.Pending == 0 && stats.WriteBehind.Flushed == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the background flusher did not flush the item within 60s: %s", body)
		}
		time.Sleep(20 * time.Millisecond)
	}

	ctx := context.Background()
	conn, err := pgx.Connect(ctx, testenv.Get(t).DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var stored int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM analyses WHERE id = $1`, accepted.IDs[0]).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if stored != 1 {
		t.Fatalf("the item is %d times in Postgres after the background flush, want 1", stored)
	}

	resp, body = call(t, http.MethodPost, base+"/api/v1/cache/write-behind/flush", "", admin...)
	expect(t, resp, body, http.StatusOK)
	if string(body) != `{"flushed":0}` {
		t.Fatalf(`flush after the background flush answered %s; nothing was pending when it arrived`, body)
	}
}
