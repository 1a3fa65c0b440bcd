package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/analysis-cache/service/internal/testenv"
)

// TestWriteBehindSurvivesKill9 is the promise "nothing accepted with 202 is
// ever lost": bulk batches go to a real server process from several
// clients at once, the process is killed with SIGKILL while requests are in
// flight (entries undelivered, delivered and unflushed, mid-flush), a new
// process starts (a new consumer name), and after an admin flush every id
// that was answered 202 is in Postgres exactly once and readable.
func TestWriteBehindSurvivesKill9(t *testing.T) {
	env := testenv.Get(t)
	overrides := map[string]string{
		// Small batches so the flusher lags behind the clients and the kill
		// finds entries in every state.
		"WRITE_BEHIND_BATCH_SIZE":     "7",
		"WRITE_BEHIND_FLUSH_INTERVAL": "100ms",
	}
	first := startProcess(t, overrides)

	var (
		mu       sync.Mutex
		accepted []uuid.UUID
		wg       sync.WaitGroup
	)
	enough := make(chan struct{})
	var once sync.Once
	for c := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := 0; ; b++ {
				ids, ok := postBulk(first.Base, c, b)
				if !ok {
					return // the process is gone
				}
				mu.Lock()
				accepted = append(accepted, ids...)
				if len(accepted) >= 600 {
					once.Do(func() { close(enough) })
				}
				mu.Unlock()
			}
		}()
	}
	<-enough
	first.Kill()
	wg.Wait()
	t.Logf("%d ids accepted before kill -9", len(accepted))

	second := startProcess(t, overrides)
	resp, body := call(t, http.MethodPost, second.Base+"/api/v1/cache/write-behind/flush", "",
		"Authorization", "Bearer "+testAdminToken)
	expect(t, resp, body, http.StatusOK)

	ctx := context.Background()
	conn, err := pgx.Connect(ctx, env.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var stored int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM analyses WHERE id = ANY($1)`, accepted).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if stored != len(accepted) {
		t.Fatalf("%d of %d ids answered 202 are in Postgres after kill -9, restart and flush (body %s)", stored, len(accepted), body)
	}
	// Client-given ids were resent by nobody; every accepted id is distinct,
	// so stored == len(accepted) means each exactly once (id is the key).
	seen := make(map[uuid.UUID]bool, len(accepted))
	for _, id := range accepted {
		if seen[id] {
			t.Fatalf("id %s answered twice", id)
		}
		seen[id] = true
	}
	for _, id := range accepted[:20] {
		resp, body := call(t, http.MethodGet, second.Base+"/api/v1/analyses/"+id.String(), "")
		expect(t, resp, body, http.StatusOK)
	}
}

// postBulk sends one bulk batch of 25 items (every other one with a
// client-given id) and returns the ids of a 202, ok=false when the server
// did not answer (killed).
func postBulk(base string, client, batch int) ([]uuid.UUID, bool) {
	owner := uuid.New()
	var sb strings.Builder
	sb.WriteString(`{"items":[`)
	for i := range 25 {
		if i > 0 {
			sb.WriteByte(',')
		}
		id := ""
		if i%2 == 0 {
			id = fmt.Sprintf(`"id":%q,`, uuid.NewString())
		}
		fmt.Fprintf(&sb, `{%s"owner_id":%q,"url":"https://example.com/%d/%d/%d","title":"kill9 %d","notes":"secret"}`,
			id, owner, client, batch, i, i)
	}
	sb.WriteString(`]}`)
	resp, err := http.Post(base+"/api/v1/analyses/bulk", "application/json", strings.NewReader(sb.String()))
	if err != nil {
		return nil, false
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return nil, resp.StatusCode == http.StatusServiceUnavailable // retry later on 503
	}
	var out struct {
		Accepted int         `json:"accepted"`
		IDs      []uuid.UUID `json:"ids"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, false // cut mid-body by the kill: not an answer
	}
	if out.Accepted != 25 || len(out.IDs) != 25 {
		return nil, false
	}
	return out.IDs, true
}
