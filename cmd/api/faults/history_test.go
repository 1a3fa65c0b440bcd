package faults

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// kind is what an operation of the workload did.
type kind int

const (
	opCreate   kind = iota // POST /api/v1/analyses
	opPatch                // PATCH /api/v1/analyses/{id}
	opDelete               // DELETE /api/v1/analyses/{id}
	opGet                  // GET /api/v1/analyses/{id}
	opList                 // GET /api/v1/analyses?owner_id=
	opUserList             // GET /api/v1/users/{owner}/analyses
)

func (k kind) String() string {
	return [...]string{"CREATE", "PATCH", "DELETE", "GET", "LIST", "USERLIST"}[k]
}

func (k kind) isRead() bool { return k >= opGet }

// op is one HTTP call as the client saw it: when it was sent and when its
// answer was read, on which instance, and what it said.
type op struct {
	seq    int
	kind   kind
	inst   string // "A" or "B"
	start  time.Time
	end    time.Time
	status int    // 0: no answer (connection error, timeout): outcome unknown
	err    string // why there was no answer
	id     string // the analysis (for a create: the id answered, "" when unknown)
	owner  string
	// version is the analysis version of a create, patch or GET answer.
	version int64
	ifMatch int64 // 0: no If-Match
	xcache  string
	// items is the page of a list read: id → version; count its "count".
	items map[string]int64
	count int
	// final marks the reads of the convergence check after the load.
	final bool
}

// acked reports whether op is a write the service acknowledged.
func (o *op) acked() bool {
	switch o.kind {
	case opCreate:
		return o.status == 201 && o.id != ""
	case opPatch:
		return o.status == 200
	case opDelete:
		return o.status == 204
	}
	return false
}

// mayHaveDeleted reports whether op is a DELETE that may have removed its
// analysis: acknowledged, or without a definite refusal (no answer, 5xx).
func (o *op) mayHaveDeleted() bool {
	return o.kind == opDelete && (o.status == 204 || o.status == 0 || o.status >= 500)
}

// describe renders op with times relative to t0.
func (o *op) describe(t0 time.Time) string {
	var b strings.Builder
	fmt.Fprintf(&b, "#%d %s %s", o.seq, o.inst, o.kind)
	if o.id != "" {
		fmt.Fprintf(&b, " id=%s", o.id[:8])
	}
	if o.kind == opList || o.kind == opUserList {
		fmt.Fprintf(&b, " owner=%s", o.owner[:8])
	}
	if o.ifMatch != 0 {
		fmt.Fprintf(&b, " If-Match=%d", o.ifMatch)
	}
	fmt.Fprintf(&b, " [%+.3fs, %+.3fs] → %d", o.start.Sub(t0).Seconds(), o.end.Sub(t0).Seconds(), o.status)
	if o.status == 0 {
		fmt.Fprintf(&b, " (%s)", o.err)
	}
	if o.version != 0 {
		fmt.Fprintf(&b, " v%d", o.version)
	}
	if o.xcache != "" {
		fmt.Fprintf(&b, " X-Cache=%s", o.xcache)
	}
	if o.final {
		b.WriteString(" (final check)")
	}
	return b.String()
}

// history collects the operations of one scenario from many goroutines.
type history struct {
	mu  sync.Mutex
	ops []*op
}

// add records o and gives it its sequence number.
func (h *history) add(o *op) {
	h.mu.Lock()
	o.seq = len(h.ops) + 1
	h.ops = append(h.ops, o)
	h.mu.Unlock()
}

// snapshot returns the operations recorded so far.
func (h *history) snapshot() []*op {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.ops)
}

// violation is a read that saw the world as it was before a write the
// service had already acknowledged when the read was sent.
type violation struct {
	read  *op
	write *op // the acknowledged create, patch or delete the read missed
	what  string
}

func (v violation) describe(t0 time.Time) string {
	return fmt.Sprintf("%s: read %s; missed %s", v.what, v.read.describe(t0), v.write.describe(t0))
}

// check is the linearizability-lite judge of a history. Operations are
// compared only by the client's clocks: a write is in the past of a read
// when its acknowledgement was received before the read was sent
// (write.end < read.start). For every read with an answer:
//
//   - GET 200 at version v: no acknowledged create or patch of that id in
//     its past has a version above v, and no acknowledged DELETE of it is in
//     its past.
//   - GET 404: when an acknowledged create or patch of the id is in its
//     past, some DELETE of it that may have succeeded started before the
//     read ended.
//   - A list or user list of owner O (200): no id with an acknowledged
//     DELETE in its past is listed; an id whose acknowledged create or
//     patch is in its past is listed at that version or later, unless a
//     DELETE of it that may have succeeded started before the read ended
//     (or the page is incomplete: count > items).
//
// Concurrent operations constrain nothing, and writes without an answer
// (the instance was killed) only excuse reads, never condemn them. Each
// read yields at most one violation: the write it missed that was
// acknowledged first (the start of its staleness).
func check(ops []*op) []violation {
	writes := map[string][]*op{}  // id → acknowledged creates and patches
	deletes := map[string][]*op{} // id → DELETEs that may have removed it
	owned := map[string][]string{}
	for _, o := range ops {
		switch {
		case (o.kind == opCreate || o.kind == opPatch) && o.acked():
			if o.kind == opCreate {
				owned[o.owner] = append(owned[o.owner], o.id)
			}
			writes[o.id] = append(writes[o.id], o)
		case o.mayHaveDeleted():
			deletes[o.id] = append(deletes[o.id], o)
		}
	}
	// oldestMissed is the acknowledged write of id, acknowledged before t,
	// with a version above v that was acknowledged first: the start of the
	// staleness of a read that saw v.
	oldestMissed := func(id string, t time.Time, v int64) *op {
		var w *op
		for _, c := range writes[id] {
			if c.end.Before(t) && c.version > v && (w == nil || c.end.Before(w.end)) {
				w = c
			}
		}
		return w
	}
	ackedDeleteBefore := func(id string, t time.Time) *op {
		for _, d := range deletes[id] {
			if d.acked() && d.end.Before(t) {
				return d
			}
		}
		return nil
	}
	deleteStartedBefore := func(id string, t time.Time) bool {
		for _, d := range deletes[id] {
			if d.start.Before(t) {
				return true
			}
		}
		return false
	}

	var out []violation
	for _, r := range ops {
		if !r.kind.isRead() {
			continue
		}
		switch {
		case r.kind == opGet && r.status == 200:
			if d := ackedDeleteBefore(r.id, r.start); d != nil {
				out = append(out, violation{r, d, "deleted analysis read back"})
			} else if w := oldestMissed(r.id, r.start, r.version); w != nil {
				out = append(out, violation{r, w, fmt.Sprintf("stale version (v%d after v%d was acknowledged)", r.version, w.version)})
			}
		case r.kind == opGet && r.status == 404:
			if w := oldestMissed(r.id, r.start, 0); w != nil && !deleteStartedBefore(r.id, r.end) {
				out = append(out, violation{r, w, "acknowledged analysis answered 404"})
			}
		case (r.kind == opList || r.kind == opUserList) && r.status == 200:
			var worst *violation
			for _, id := range owned[r.owner] {
				v, listed := r.items[id]
				var found *violation
				if d := ackedDeleteBefore(id, r.start); d != nil {
					if listed {
						found = &violation{r, d, fmt.Sprintf("deleted analysis %s listed", id[:8])}
					}
				} else if listed {
					if w := oldestMissed(id, r.start, v); w != nil {
						found = &violation{r, w, fmt.Sprintf("analysis %s listed at v%d after v%d was acknowledged", id[:8], v, w.version)}
					}
				} else if w := oldestMissed(id, r.start, 0); w != nil && r.count <= len(r.items) && !deleteStartedBefore(id, r.end) {
					found = &violation{r, w, fmt.Sprintf("acknowledged analysis %s missing from the list", id[:8])}
				}
				if found != nil && (worst == nil || found.write.end.Before(worst.write.end)) {
					worst = found // the oldest miss: the longest staleness
				}
			}
			if worst != nil {
				out = append(out, *worst)
			}
		}
	}
	return out
}
