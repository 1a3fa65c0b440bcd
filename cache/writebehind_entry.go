package cache

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/analysis-cache/service/domain"
)

// wbEntry is one stream entry as the flusher sees it. Raw and ID are kept
// even when the entry does not decode, so it can be dead-lettered as it was.
type wbEntry struct {
	StreamID string
	ID       string // the "id" field as written
	Raw      string // the "v" field: the sealed cache entry, also written to the cache key
	Analysis domain.Analysis
	Err      error // why it does not decode; nil when Analysis is set
}

// errEntryDeleted marks a pending entry whose stream entry is gone (trimmed
// by hand): there is nothing left to flush.
var errEntryDeleted = errors.New("stream entry deleted")

// decodeEntry opens a stream message: the sealed value, then the JSON of
// the analysis inside it, and checks that both name the same id.
func (w *WriteBehind) decodeEntry(m redis.XMessage) wbEntry {
	e := wbEntry{StreamID: m.ID}
	if m.Values == nil {
		e.Err = errEntryDeleted
		return e
	}
	e.ID, _ = m.Values["id"].(string)
	e.Raw, _ = m.Values["v"].(string)
	entry, err := w.codec.Decode([]byte(e.Raw))
	if err != nil {
		e.Err = fmt.Errorf("decode entry: %w", err)
		return e
	}
	// W since entries are written behind; V from a process before that change.
	if !entry.IsValue() {
		e.Err = fmt.Errorf("decode entry: kind %q is not a value", entry.Kind)
		return e
	}
	a, err := decodeAnalysisBody(entry.Body)
	if err != nil {
		e.Err = err
		return e
	}
	if a.ID.String() != e.ID {
		e.Err = fmt.Errorf("decode entry: body id %s differs from entry id %q", a.ID, e.ID)
		return e
	}
	e.Analysis = a
	return e
}

// wbAnalysisJSON is AnalysisPublic as domain.(*Analysis).AppendJSON writes it.
type wbAnalysisJSON struct {
	ID        uuid.UUID     `json:"id"`
	OwnerID   uuid.UUID     `json:"owner_id"`
	URL       string        `json:"url"`
	Title     string        `json:"title"`
	Status    domain.Status `json:"status"`
	Summary   *string       `json:"summary"`
	Score     *float64      `json:"score"`
	Tags      []string      `json:"tags"`
	Notes     *string       `json:"notes"`
	Version   int64         `json:"version"`
	CreatedAt time.Time     `json:"created_at"`
	UpdatedAt time.Time     `json:"updated_at"`
}

// decodeAnalysisBody parses an AnalysisPublic body. Floats round-trip exactly
// (Python's repr is the shortest representation) and times keep their
// microseconds, so the row inserted equals the value that was cached.
func decodeAnalysisBody(body []byte) (domain.Analysis, error) {
	var j wbAnalysisJSON
	if err := json.Unmarshal(body, &j); err != nil {
		return domain.Analysis{}, fmt.Errorf("decode analysis body: %w", err)
	}
	if j.ID == uuid.Nil {
		return domain.Analysis{}, errors.New("decode analysis body: no id")
	}
	if j.Tags == nil {
		j.Tags = []string{}
	}
	return domain.Analysis{
		ID: j.ID, OwnerID: j.OwnerID, URL: j.URL, Title: j.Title, Status: j.Status,
		Summary: j.Summary, Score: j.Score, Tags: j.Tags, Notes: j.Notes, Version: j.Version,
		CreatedAt: j.CreatedAt.UTC(), UpdatedAt: j.UpdatedAt.UTC(),
	}, nil
}
