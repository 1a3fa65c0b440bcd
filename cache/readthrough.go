package cache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/analysis-cache/service/domain"
)

// ReadThrough is a read-through cache in front of an AnalysisRepository: it
// implements the same interface by wrapping next, serves ListByOwner from
// Redis, and loads from next itself on a miss, so its callers never see the
// cache. Every other method delegates; writes also invalidate the owner's
// tag, so the decorator keeps the repository's contract (a write is visible
// to the next ListByOwner). Its guarantees:
//
//   - Entries ("ulist:{owner}:{skip}:{limit}") carry the tags "user:{owner}"
//     and "analyses"; value and memberships are written by one script.
//   - One round trip per read: one script GETs the page and the generations
//     of its tags. A fill that races a tag invalidation never resurrects the
//     stale page: the fill aborts when a generation changed since that read,
//     which happened before the load (see Tags).
//   - A page is served only under the tag generations it was loaded under:
//     they are sealed into the entry and compared on every read, so a page
//     an invalidation has not removed yet, or whose tag set was lost
//     (eviction), is a miss as soon as the generation is bumped.
//   - Cached pages are the exact JSON body (encrypted by the Codec); every
//     read hands that body to the caller through WithStatus, so a cached
//     response is byte-identical to an uncached one, and returns the Page
//     (parsed from the body on a HIT, unless the caller asked for BodyOnly).
//   - Redis errors are never swallowed: logged with the key, counted, and the
//     read is served by next with BYPASS; no read is served from Redis while
//     the Gate is closed. A write through this decorator invalidates its
//     owner's tag; when Redis refuses, the change stays pending in the
//     invalidation log, whose sweep (Log) applies it.
//
// A write whose outcome is unknown (an error after the commit may have
// happened) is not invalidated: its owner's pages may stay stale up to the
// TTL. A ReadThrough is safe for concurrent use.
type ReadThrough struct {
	next    domain.AnalysisRepository
	rdb     Client
	keys    Keys
	codec   *Codec
	metrics *Metrics
	gate    *Gate
	tags    *Tags
	ttl     time.Duration
	jitter  float64

	// afterLoad is a test hook: it runs between the load from next and the
	// fill, to force an invalidation in between.
	afterLoad func()
}

var _ domain.AnalysisRepository = (*ReadThrough)(nil)

// AllUserListsTag is carried by every cached user list: invalidating it
// (admin API, {"tags": ["analyses"]}) drops all of them at once. Writes do
// not use it: the owner's tag covers every list a write can change.
const AllUserListsTag = "analyses"

// UserTag is the tag of the cached lists of one owner: "user:{owner}".
func UserTag(owner uuid.UUID) string { return "user:" + owner.String() }

// NewReadThrough returns the read-through decorator of next; pages live
// ttl ± jitter (a fraction). gate is shared with the other patterns.
func NewReadThrough(next domain.AnalysisRepository, rdb Client, keys Keys, codec *Codec, m *Metrics, gate *Gate, ttl time.Duration, jitter float64) *ReadThrough {
	if ttl <= 0 {
		ttl = 5 * time.Minute
	}
	return &ReadThrough{
		next: next, rdb: rdb, keys: keys, codec: codec, metrics: m, gate: gate,
		tags: NewTags(rdb, keys, m), ttl: ttl, jitter: clampJitter(jitter),
	}
}

// ReadStatus is what a cache decorator reports about one read to a caller
// that asked with WithStatus: where it was served from and the exact JSON
// body of the page (which the caller may write as is).
type ReadStatus struct {
	Status Status
	Body   []byte

	// BodyOnly, set by the caller before the read, says it will use Body and
	// not the returned Page: a HIT then skips parsing the cached body and
	// returns an empty Page (opening the entry is ~7x cheaper than parsing
	// it). Misses and errors return the Page as usual.
	BodyOnly bool
}

type readStatusKey struct{}

// WithStatus returns a context that makes the decorator record the outcome
// of the read made with it in the returned *ReadStatus. Use one context per
// read.
func WithStatus(ctx context.Context) (context.Context, *ReadStatus) {
	rs := new(ReadStatus)
	return context.WithValue(ctx, readStatusKey{}, rs), rs
}

// record fills the caller's ReadStatus, if it asked for one, and counts the lookup.
func (r *ReadThrough) record(ctx context.Context, s Status, body []byte) {
	r.metrics.Lookup(PatternReadThrough, s)
	if rs, ok := ctx.Value(readStatusKey{}).(*ReadStatus); ok {
		rs.Status, rs.Body = s, body
	}
}

// rtRead returns {GET KEYS[1], GET KEYS[2], ...}: the page and the
// generations of its tags ("0" when missing), in one round trip.
var rtRead = redis.NewScript(`
local r = {redis.call('GET', KEYS[1])}
for i = 2, #KEYS do r[i] = redis.call('GET', KEYS[i]) or '0' end
return r`)

// ListByOwner serves the owner's page from Redis, or loads it from next and
// caches it. See the type's guarantees.
func (r *ReadThrough) ListByOwner(ctx context.Context, owner uuid.UUID, skip, limit int) (domain.Page, error) {
	epoch, open := r.gate.Admit()
	if !open {
		return r.loadOnly(ctx, owner, skip, limit, Bypass)
	}
	key := r.keys.UserList(owner, skip, limit)
	tags := []string{UserTag(owner), AllUserListsTag}
	res, err := rtRead.Run(ctx, r.rdb, []string{key, r.keys.TagGeneration(tags[0]), r.keys.TagGeneration(tags[1])}).Slice()
	if err != nil {
		r.metrics.Error(ctx, PatternReadThrough, "read", key, err)
		return r.loadOnly(ctx, owner, skip, limit, Bypass)
	}
	if !r.gate.Still(epoch) {
		return r.loadOnly(ctx, owner, skip, limit, Bypass)
	}
	gens := generationArgs(res[1:])
	if raw, ok := res[0].(string); ok {
		page, body, err := r.decode(raw, gens, r.bodyOnly(ctx))
		switch {
		case err == nil:
			r.record(ctx, Hit, body)
			return page, nil
		case errors.Is(err, errStaleGenerations):
			// Filled before an invalidation whose member removal has not
			// reached it (or whose tag set was lost): a plain miss.
		default:
			// Another key, another format or a body we cannot parse: a
			// miss, counted; the fill below replaces it.
			r.metrics.Error(ctx, PatternReadThrough, "decode", key, err)
		}
	}

	page, err := r.next.ListByOwner(ctx, owner, skip, limit)
	if err != nil {
		r.record(ctx, Miss, nil)
		return page, err
	}
	if r.afterLoad != nil {
		r.afterLoad()
	}
	// The sealed entry is "{generations}\n{body}": the generations the
	// load was made under, checked again by every read.
	head := strings.Join(gens, ",")
	plain := page.AppendJSON(append(make([]byte, 0, 4096), head+"\n"...))
	body := plain[len(head)+1:]
	entry := r.codec.Value(0, plain)
	if _, err := r.tags.fill(ctx, key, entry, spreadTTL(r.ttl, r.jitter), tags, gens); err != nil {
		// Served from the database either way; only the fill is lost.
		r.metrics.Error(ctx, PatternReadThrough, "fill", key, err)
	}
	r.record(ctx, Miss, body)
	return page, nil
}

func (r *ReadThrough) loadOnly(ctx context.Context, owner uuid.UUID, skip, limit int, s Status) (domain.Page, error) {
	page, err := r.next.ListByOwner(ctx, owner, skip, limit)
	r.record(ctx, s, nil)
	return page, err
}

// bodyOnly reports whether the caller asked for the body alone.
func (r *ReadThrough) bodyOnly(ctx context.Context) bool {
	rs, ok := ctx.Value(readStatusKey{}).(*ReadStatus)
	return ok && rs.BodyOnly
}

// errStaleGenerations is a cached page filled under tag generations that
// have changed since: an invalidated page that is still there.
var errStaleGenerations = errors.New("page filled under older tag generations")

// decode opens a cached entry, checks that it was filled under the current
// tag generations gens, and, unless bodyOnly, parses the page it holds.
func (r *ReadThrough) decode(raw string, gens []string, bodyOnly bool) (domain.Page, []byte, error) {
	e, err := r.codec.Decode([]byte(raw))
	if err != nil {
		return domain.Page{}, nil, err
	}
	if e.Kind != KindValue {
		return domain.Page{}, nil, fmt.Errorf("%w: kind %q in a user list", ErrUndecodable, e.Kind)
	}
	head, body, ok := bytes.Cut(e.Body, []byte{'\n'})
	if !ok {
		return domain.Page{}, nil, fmt.Errorf("%w: user list without generations", ErrUndecodable)
	}
	if string(head) != strings.Join(gens, ",") {
		return domain.Page{}, nil, errStaleGenerations
	}
	e.Body = body
	if bodyOnly {
		return domain.Page{}, e.Body, nil
	}
	page, err := domain.ParsePageJSON(e.Body)
	if err != nil {
		return domain.Page{}, nil, fmt.Errorf("%w: %v", ErrUndecodable, err)
	}
	return page, e.Body, nil
}

// Get delegates to next.
func (r *ReadThrough) Get(ctx context.Context, id uuid.UUID) (*domain.Analysis, error) {
	return r.next.Get(ctx, id)
}

// Create delegates to next, then invalidates the owner's cached lists
// before returning.
func (r *ReadThrough) Create(ctx context.Context, a *domain.Analysis) (domain.Change, error) {
	change, err := r.next.Create(ctx, a)
	if err != nil {
		return change, err
	}
	r.invalidateOwner(ctx, a.OwnerID)
	return change, nil
}

// Update delegates to next, then invalidates the owner's cached lists
// before returning. The owner of an analysis never changes (a patch has no
// owner), so the returned owner is also the old one.
func (r *ReadThrough) Update(ctx context.Context, id uuid.UUID, patch domain.AnalysisPatch, ifVersion *int64) (*domain.Analysis, domain.Change, error) {
	a, change, err := r.next.Update(ctx, id, patch, ifVersion)
	if err != nil {
		return a, change, err
	}
	r.invalidateOwner(ctx, a.OwnerID)
	return a, change, nil
}

// Delete delegates to next, then invalidates the owner's cached lists
// before returning.
func (r *ReadThrough) Delete(ctx context.Context, id uuid.UUID, ifVersion *int64) (*domain.Analysis, domain.Change, error) {
	a, change, err := r.next.Delete(ctx, id, ifVersion)
	if err != nil {
		return a, change, err
	}
	r.invalidateOwner(ctx, a.OwnerID)
	return a, change, nil
}

// invalidateOwner invalidates the owner's tag after a committed write. A
// failure is counted and logged; the change stays pending in the log.
func (r *ReadThrough) invalidateOwner(ctx context.Context, owner uuid.UUID) {
	tag := UserTag(owner)
	_ = r.tags.invalidateAfterWrite(ctx, PatternReadThrough, "invalidate_tags", r.keys.Tag(tag), nil, []string{tag})
}

// List delegates to next (the filtered list is the Namespace's business).
func (r *ReadThrough) List(ctx context.Context, filter domain.ListFilter) (domain.Page, error) {
	return r.next.List(ctx, filter)
}

// InsertMissing delegates to next, then invalidates the cached lists of the
// owners of the inserted analyses before returning.
func (r *ReadThrough) InsertMissing(ctx context.Context, items []domain.Analysis) ([]uuid.UUID, domain.Change, error) {
	ids, change, err := r.next.InsertMissing(ctx, items)
	if err != nil || len(ids) == 0 {
		return ids, change, err
	}
	inserted := make(map[uuid.UUID]struct{}, len(ids))
	for _, id := range ids {
		inserted[id] = struct{}{}
	}
	seen := make(map[uuid.UUID]struct{})
	var tags []string
	for i := range items {
		o := items[i].OwnerID
		if _, ok := inserted[items[i].ID]; !ok {
			continue
		}
		if _, ok := seen[o]; !ok {
			seen[o] = struct{}{}
			tags = append(tags, UserTag(o))
		}
	}
	if len(tags) > 0 {
		_ = r.tags.invalidateAfterWrite(ctx, PatternReadThrough, "invalidate_tags", r.keys.Tag(tags[0]), nil, tags)
	}
	return ids, change, nil
}

// ExistingIDs delegates to next.
func (r *ReadThrough) ExistingIDs(ctx context.Context, ids []uuid.UUID) ([]uuid.UUID, error) {
	return r.next.ExistingIDs(ctx, ids)
}

// Stats delegates to next.
func (r *ReadThrough) Stats(ctx context.Context) (*domain.Stats, error) { return r.next.Stats(ctx) }

// Ping delegates to next.
func (r *ReadThrough) Ping(ctx context.Context) error { return r.next.Ping(ctx) }
