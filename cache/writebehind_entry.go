package cache

import (
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// wbEntry is one stream entry as the flusher sees it. Raw and ID are kept
// even when the entry does not decode, so it can be dead-lettered as it was.
type wbEntry[T any] struct {
	StreamID string
	ID       string // the "id" field as written
	Raw      string // the "v" field: the sealed cache entry, also written to the cache key
	Value    T
	Err      error // why it does not decode; nil when Value is set
}

// errEntryDeleted marks a pending entry whose stream entry is gone (trimmed
// by hand): there is nothing left to flush.
var errEntryDeleted = errors.New("stream entry deleted")

// decodeEntry opens a stream message: the sealed value, then the entity
// inside it, and checks that both name the same id.
func (w *WriteBehind[T]) decodeEntry(m redis.XMessage) wbEntry[T] {
	e := wbEntry[T]{StreamID: m.ID}
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
	v, err := w.ent.Parse(entry.Body)
	if err != nil {
		e.Err = fmt.Errorf("decode entry: %w", err)
		return e
	}
	if id := w.ent.ID(v); id != e.ID {
		e.Err = fmt.Errorf("decode entry: body id %s differs from entry id %q", id, e.ID)
		return e
	}
	e.Value = v
	return e
}
