package cache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// ReadThrough is a read-through cache of one resource's per-group lists
// (an owner's analyses): the caller asks the cache for a page, and the
// cache loads it from the source it was built with on a miss, so callers
// never load themselves (compare Aside, where the caller passes its load).
// Its guarantees:
//
//   - Entries ("{Kind}-list:{group}:{skip}:{limit}") carry the tags
//     Resource.GroupTag(group) and Resource.AllGroups; value and memberships
//     are written by one script. A change to an entity of the group
//     invalidates the group's tag (ListInvalidation, settled by the Log), so
//     no page is stale after the write answered.
//   - One round trip per read: one script GETs the page and the generations
//     of its tags. A fill that races a tag invalidation never resurrects the
//     stale page: the fill aborts when a generation changed since that read,
//     which happened before the load (see Tags).
//   - A page is served only under the tag generations it was loaded under:
//     they are sealed into the entry and compared on every read, so a page
//     an invalidation has not removed yet, or whose tag set was lost
//     (eviction), is a miss as soon as the generation is bumped.
//   - Cached pages are the exact body the Encoding makes (encrypted by the
//     Codec), so a cached response is byte-identical to an uncached one.
//   - Redis errors are never swallowed: logged with the key, counted, and the
//     read is served by the source with BYPASS; no read is served from
//     Redis while the Gate is closed.
//
// A ReadThrough is safe for concurrent use.
type ReadThrough[T any] struct {
	source   GroupLister[T]
	enc      Encoding[T]
	resource Resource
	rdb      Client
	keys     Keys
	codec    *Codec
	metrics  *Metrics
	gate     *Gate
	tags     *Tags
	opt      PageOptions

	// afterLoad is a test hook: it runs between the load from the source
	// and the fill, to force an invalidation in between.
	afterLoad func()
}

// GroupLister is the store a ReadThrough reads through: one page (skip,
// limit) of the entities of a group.
type GroupLister[T any] interface {
	ListByGroup(ctx context.Context, group string, skip, limit int) (T, error)
}

// GroupListerFunc adapts a function to a GroupLister.
type GroupListerFunc[T any] func(ctx context.Context, group string, skip, limit int) (T, error)

// ListByGroup calls f.
func (f GroupListerFunc[T]) ListByGroup(ctx context.Context, group string, skip, limit int) (T, error) {
	return f(ctx, group, skip, limit)
}

// Encoding turns a value into the exact body cached and served, and back.
// Parse(Append(nil, v)) must equal v.
type Encoding[T any] interface {
	Append(dst []byte, v T) []byte
	Parse(body []byte) (T, error)
}

// NewReadThrough returns the read-through cache of resource's per-group
// lists on b, loading pages from source and encoding them with enc; pages
// live opt.TTL ± opt.Jitter. resource.Group must be set (pages are tagged
// by group); AllGroups is optional. It panics when Group is empty.
func NewReadThrough[T any](b Backend, resource Resource, source GroupLister[T], enc Encoding[T], opt PageOptions) *ReadThrough[T] {
	if resource.Group == "" {
		panic(fmt.Sprintf("cache: NewReadThrough(%q): the resource has no Group to tag its lists with", resource.Kind))
	}
	b = b.withDefaults()
	return &ReadThrough[T]{
		source: source, enc: enc, resource: resource,
		rdb: b.Redis, keys: b.Keys, codec: b.Codec, metrics: b.Metrics, gate: b.Gate,
		tags: NewTags(b), opt: opt.withDefaults(),
	}
}

// GroupList is a cached page of a group's entities of kind:
// "{kind}-list:{group}:{skip}:{limit}".
func (k Keys) GroupList(kind, group string, skip, limit int) string {
	return k.Prefix + kind + "-list:" + group + ":" + strconv.Itoa(skip) + ":" + strconv.Itoa(limit)
}

// rtRead returns {GET KEYS[1], GET KEYS[2], ...}: the page and the
// generations of its tags ("0" when missing), in one round trip.
var rtRead = redis.NewScript(`
local r = {redis.call('GET', KEYS[1])}
for i = 2, #KEYS do r[i] = redis.call('GET', KEYS[i]) or '0' end
return r`)

// Get returns the exact body of the group's page, from Redis or loaded from
// the source and cached (see the type's guarantees). Result.Pattern is
// PatternReadThrough. Errors are the source's.
func (r *ReadThrough[T]) Get(ctx context.Context, group string, skip, limit int) (Result, error) {
	res, _, err := r.get(ctx, group, skip, limit, false)
	return res, err
}

// GetValue is Get that also returns the page as a value: parsed from the
// cached body on a HIT, as loaded otherwise.
func (r *ReadThrough[T]) GetValue(ctx context.Context, group string, skip, limit int) (T, Result, error) {
	res, v, err := r.get(ctx, group, skip, limit, true)
	return v, res, err
}

func (r *ReadThrough[T]) get(ctx context.Context, group string, skip, limit int, parse bool) (Result, T, error) {
	epoch, open := r.gate.Admit()
	if !open {
		return r.loadOnly(ctx, group, skip, limit, Bypass)
	}
	key := r.keys.GroupList(r.resource.Kind, group, skip, limit)
	tags := r.tagsOf(group)
	keys := make([]string, 1, 1+len(tags))
	keys[0] = key
	for _, tag := range tags {
		keys = append(keys, r.keys.TagGeneration(tag))
	}
	res, err := rtRead.Run(ctx, r.rdb, keys).Slice()
	if err != nil {
		r.metrics.Error(ctx, r.resource.Kind, PatternReadThrough, "read", key, err)
		return r.loadOnly(ctx, group, skip, limit, Bypass)
	}
	if !r.gate.Still(epoch) {
		return r.loadOnly(ctx, group, skip, limit, Bypass)
	}
	gens := generationArgs(res[1:])
	if raw, ok := res[0].(string); ok {
		v, body, err := r.decode(raw, gens, parse)
		switch {
		case err == nil:
			r.metrics.Lookup(r.resource.Kind, PatternReadThrough, Hit)
			return Result{Body: body, Status: Hit, Pattern: PatternReadThrough}, v, nil
		case errors.Is(err, errStaleGenerations):
			// Filled before an invalidation whose member removal has not
			// reached it (or whose tag set was lost): a plain miss.
		default:
			// Another key, another format or a body we cannot parse: a
			// miss, counted; the fill below replaces it.
			r.metrics.Error(ctx, r.resource.Kind, PatternReadThrough, "decode", key, err)
		}
	}

	v, err := r.source.ListByGroup(ctx, group, skip, limit)
	if err != nil {
		r.metrics.Lookup(r.resource.Kind, PatternReadThrough, Miss)
		return Result{Status: Miss, Pattern: PatternReadThrough}, v, err
	}
	if r.afterLoad != nil {
		r.afterLoad()
	}
	// The sealed entry is "{generations}\n{body}": the generations the
	// load was made under, checked again by every read.
	head := strings.Join(gens, ",")
	plain := r.enc.Append(append(make([]byte, 0, 4096), head+"\n"...), v)
	body := plain[len(head)+1:]
	entry := r.codec.Value(0, plain)
	if _, err := r.tags.fill(ctx, key, entry, spreadTTL(r.opt.TTL, r.opt.Jitter), tags, gens); err != nil {
		// Served from the source either way; only the fill is lost.
		r.metrics.Error(ctx, r.resource.Kind, PatternReadThrough, "fill", key, err)
	}
	r.metrics.Lookup(r.resource.Kind, PatternReadThrough, Miss)
	return Result{Body: body, Status: Miss, Pattern: PatternReadThrough}, v, nil
}

// tagsOf returns the tags of group's pages: its GroupTag, and AllGroups
// when the resource has one.
func (r *ReadThrough[T]) tagsOf(group string) []string {
	if r.resource.AllGroups == "" {
		return []string{r.resource.GroupTag(group)}
	}
	return []string{r.resource.GroupTag(group), r.resource.AllGroups}
}

func (r *ReadThrough[T]) loadOnly(ctx context.Context, group string, skip, limit int, s Status) (Result, T, error) {
	v, err := r.source.ListByGroup(ctx, group, skip, limit)
	r.metrics.Lookup(r.resource.Kind, PatternReadThrough, s)
	if err != nil {
		return Result{Status: s, Pattern: PatternReadThrough}, v, err
	}
	return Result{Body: r.enc.Append(nil, v), Status: s, Pattern: PatternReadThrough}, v, nil
}

// errStaleGenerations is a cached page filled under tag generations that
// have changed since: an invalidated page that is still there.
var errStaleGenerations = errors.New("page filled under older tag generations")

// decode opens a cached entry, checks that it was filled under the current
// tag generations gens, and, when parse is set, parses the page it holds.
func (r *ReadThrough[T]) decode(raw string, gens []string, parse bool) (T, []byte, error) {
	var zero T
	e, err := r.codec.Decode([]byte(raw))
	if err != nil {
		return zero, nil, err
	}
	if e.Kind != KindValue {
		return zero, nil, fmt.Errorf("%w: kind %q in a group list", ErrUndecodable, e.Kind)
	}
	head, body, ok := bytes.Cut(e.Body, []byte{'\n'})
	if !ok {
		return zero, nil, fmt.Errorf("%w: group list without generations", ErrUndecodable)
	}
	if string(head) != strings.Join(gens, ",") {
		return zero, nil, errStaleGenerations
	}
	if !parse {
		return zero, body, nil
	}
	v, err := r.enc.Parse(body)
	if err != nil {
		return zero, nil, fmt.Errorf("%w: %v", ErrUndecodable, err)
	}
	return v, body, nil
}
