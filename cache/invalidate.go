package cache

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
)

// ErrUnavailable wraps every Redis failure the admin operations
// (Invalidator) report: the caller may retry (503 "Cache unavailable").
var ErrUnavailable = errors.New("cache unavailable")

// SelectorError is a Selector that Invalidate refuses; Reason says why.
type SelectorError struct{ Reason string }

// Error says the selector is invalid and why.
func (e *SelectorError) Error() string { return "invalid selector: " + e.Reason }

// ListInvalidation is the ChangeListener of one resource's list caches: a
// change to entities of some groups bumps the resource's namespace
// (Resource.Lists: every filtered list page) and invalidates the tag
// Resource.GroupTag(g) of each group g (its read-through per-group lists),
// in one script call, before the write answers.
//
// The AllGroups tag, carried by every per-group list, is deliberately not
// invalidated: a write can only change its group's lists, and dropping every
// per-group list on every write would make that cache useless. It exists for
// the admin API ({"tags": ["analyses"]} drops all user lists).
//
// A Redis failure is logged, counted and returned: the caller's Log
// settles the change (applied later by some process, and every process
// bypasses Redis until then). ListInvalidation is safe for concurrent use.
type ListInvalidation struct {
	tags     *Tags // its metrics count the failures
	resource Resource
	nsKeys   []string // the namespace counter, when the resource has one
}

var _ ChangeListener = (*ListInvalidation)(nil)

// NewListInvalidation returns the ChangeListener of resource's list caches on b.
func NewListInvalidation(b Backend, resource Resource) *ListInvalidation {
	l := &ListInvalidation{tags: NewTags(b), resource: resource}
	if resource.Lists != "" {
		l.nsKeys = []string{b.Keys.Namespace(resource.Lists)}
	}
	return l
}

// Changed bumps the resource's namespace and invalidates the tag of each
// group; see the type's guarantees.
func (l *ListInvalidation) Changed(ctx context.Context, groups ...string) error {
	var tags []string
	if l.resource.Group != "" {
		tags = make([]string, 0, len(groups))
		for _, g := range groups {
			tags = append(tags, l.resource.GroupTag(g))
		}
	}
	key := l.resource.Kind
	if len(l.nsKeys) > 0 {
		key = l.nsKeys[0]
	}
	return l.tags.invalidateAfterWrite(ctx, l.resource.Kind, PatternNamespace, "invalidate_lists", key, l.nsKeys, tags)
}

// Invalidator carries out the admin API's invalidations and returns true
// counts. Its guarantees:
//
//   - Nothing outside the service's prefix is ever touched, whatever the
//     input: keys get the prefix prepended; a pattern is matched after the
//     prefix with the prefix's glob characters escaped, and every key SCAN
//     returns is checked to start with the prefix before it is deleted.
//   - Structural keys are never deleted by keys or pattern: the write-behind
//     streams ("wb:*") hold accepted writes, stampede locks ("lock:*") guard
//     computations, and tag sets ("tag:*") are how writes find the lists to
//     drop (deleting one would leave its members alive and unfindable; use a
//     tags selector instead).
//   - Patterns use SCAN (COUNT 1000) and UNLINK in batches: never KEYS or
//     FLUSHDB, never a blocking delete.
//   - Counts are what Redis deleted (UNLINK's replies), so keys that did not
//     exist, or that SCAN returned twice, are not counted.
//   - A Redis failure is logged and counted and returned wrapping
//     ErrUnavailable (503 "Cache unavailable" with Retry-After), never
//     as an internal error: the caller may retry the invalidation.
//   - A namespace selector names one of the namespaces the Invalidator was
//     built with; any other invalidates nothing.
//
// An Invalidator is safe for concurrent use.
type Invalidator struct {
	rdb        Client
	keys       Keys
	metrics    *Metrics
	tags       *Tags
	namespaces []string
}

// anyResource is the resource label of the admin operations' metrics: a
// key, pattern or tag selector may span every resource of the cache.
const anyResource = "*"

// MaxPatternLength bounds an admin pattern: Redis matches globs by
// backtracking, and no legitimate pattern of this service's keys is longer.
const MaxPatternLength = 1024

// unlinkBatch is how many keys one UNLINK of a pattern invalidation carries.
const unlinkBatch = 1000

// protectedPrefixes are the logical key prefixes keys and pattern never
// delete: the write-behind streams, stampede locks, tag sets, and the
// namespace and tag-generation counters (invalidate a namespace or a tag
// with its own selector, which bumps the counter instead).
var protectedPrefixes = []string{"wb:", "lock:", "tag:", "ns:", "taggen:"}

// NewInvalidator returns the admin invalidations on b; a namespace
// selector may name any of namespaces (the Lists of the resources served).
func NewInvalidator(b Backend, namespaces ...string) *Invalidator {
	b = b.withDefaults()
	return &Invalidator{rdb: b.Redis, keys: b.Keys, metrics: b.Metrics, tags: NewTags(b), namespaces: namespaces}
}

// Invalidate carries out the one operation s selects and returns how many
// entries it invalidated. It returns a *SelectorError when s sets no field
// or several, or when a pattern is longer than MaxPatternLength, and an
// error wrapping ErrUnavailable (with the count deleted before the failure)
// when Redis failed; every method of Invalidator reports a Redis failure so.
func (v *Invalidator) Invalidate(ctx context.Context, s Selector) (int64, error) {
	set := 0
	for _, ok := range []bool{s.Keys != nil, s.Pattern != nil, s.Tags != nil, s.Namespace != nil} {
		if ok {
			set++
		}
	}
	if set != 1 {
		return 0, &SelectorError{Reason: "exactly one of keys, pattern, tags or namespace is required"}
	}
	switch {
	case s.Keys != nil:
		return v.Keys(ctx, s.Keys...)
	case s.Pattern != nil:
		return v.Pattern(ctx, *s.Pattern)
	case s.Tags != nil:
		return v.Tags(ctx, s.Tags...)
	default:
		return v.Namespace(ctx, *s.Namespace)
	}
}

// Keys UNLINKs the given logical keys (the prefix is prepended) and returns
// how many existed. Structural keys (wb:, lock:, tag:) are skipped.
func (v *Invalidator) Keys(ctx context.Context, logical ...string) (int64, error) {
	physical := make([]string, 0, len(logical))
	for _, k := range logical {
		if !protected(k) {
			physical = append(physical, v.keys.Prefix+k)
		}
	}
	var n int64
	for start := 0; start < len(physical); start += unlinkBatch {
		batch := physical[start:min(start+unlinkBatch, len(physical))]
		d, err := v.rdb.Unlink(ctx, batch...).Result()
		n += d
		if err != nil {
			v.metrics.Error(ctx, anyResource, "admin", "unlink", batch[0], err)
			return n, fmt.Errorf("invalidate keys: %w: %w", ErrUnavailable, err)
		}
	}
	return n, nil
}

// Pattern UNLINKs every key of the prefix whose logical key matches the
// Redis glob pattern, except structural keys, and returns how many it
// deleted. See the type's guarantees.
func (v *Invalidator) Pattern(ctx context.Context, pattern string) (int64, error) {
	if len(pattern) > MaxPatternLength {
		return 0, &SelectorError{Reason: fmt.Sprintf("pattern is longer than %d bytes", MaxPatternLength)}
	}
	return v.scanUnlink(ctx, EscapeGlob(v.keys.Prefix)+pattern)
}

// scanUnlink SCANs match and UNLINKs, in batches, the keys in the prefix
// that are not structural. On a Redis Cluster it scans every master (a
// SCAN sees one node's keys only) and unlinks key by key in a pipeline (one
// batch may span slots).
func (v *Invalidator) scanUnlink(ctx context.Context, match string) (int64, error) {
	cluster, ok := v.rdb.(*redis.ClusterClient)
	if !ok {
		return v.scanUnlinkNode(ctx, v.rdb, match, false)
	}
	var total atomic.Int64
	err := cluster.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
		n, err := v.scanUnlinkNode(ctx, node, match, true)
		total.Add(n)
		return err
	})
	return total.Load(), err
}

// scanUnlinkNode is scanUnlink on one server.
func (v *Invalidator) scanUnlinkNode(ctx context.Context, node redis.Cmdable, match string, keyByKey bool) (int64, error) {
	var n int64
	batch := make([]string, 0, unlinkBatch)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		d, err := unlink(ctx, node, batch, keyByKey)
		n += d
		if err != nil {
			v.metrics.Error(ctx, anyResource, "admin", "unlink", batch[0], err)
			return fmt.Errorf("invalidate pattern: %w: %w", ErrUnavailable, err)
		}
		batch = batch[:0]
		return nil
	}
	var cursor uint64
	for {
		keys, next, err := node.Scan(ctx, cursor, match, 1000).Result()
		if err != nil {
			v.metrics.Error(ctx, anyResource, "admin", "scan", match, err)
			return n, fmt.Errorf("invalidate pattern: scan: %w: %w", ErrUnavailable, err)
		}
		for _, k := range keys {
			// Belt and braces: the escaped prefix already confines the match.
			if !strings.HasPrefix(k, v.keys.Prefix) || protected(v.keys.Logical(k)) {
				continue
			}
			if batch = append(batch, k); len(batch) == unlinkBatch {
				if err := flush(); err != nil {
					return n, err
				}
			}
		}
		if cursor = next; cursor == 0 {
			break
		}
	}
	return n, flush()
}

// unlink deletes keys in one UNLINK, or one UNLINK per key in a pipeline
// when they may live in different cluster slots, and returns how many existed.
func unlink(ctx context.Context, node redis.Cmdable, keys []string, keyByKey bool) (int64, error) {
	if !keyByKey {
		return node.Unlink(ctx, keys...).Result()
	}
	cmds, err := node.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, k := range keys {
			p.Unlink(ctx, k)
		}
		return nil
	})
	var n int64
	for _, c := range cmds {
		n += c.(*redis.IntCmd).Val()
	}
	return n, err
}

// Tags invalidates each tag (see Tags) and returns how many of their
// members still existed and were deleted.
func (v *Invalidator) Tags(ctx context.Context, tags ...string) (int64, error) {
	n, err := v.tags.Invalidate(ctx, tags...)
	if err != nil {
		v.metrics.Error(ctx, anyResource, PatternReadThrough, "invalidate_tags", "", err)
		return n, fmt.Errorf("invalidate tags: %w: %w", ErrUnavailable, err)
	}
	return n, nil
}

// Namespace bumps the version of a known namespace (NewInvalidator), which
// makes all its cached pages unreachable at once, then deletes the pages of
// the version it retired and returns how many there were: the pages this
// call made unreachable. (The bump alone is O(1); counting needs a SCAN,
// which the admin API can afford and which also frees the memory at once
// instead of at TTL.) After the bump no fill can write under the old
// version (the fill compares it), so the count is exact unless another bump
// races this one. An unknown namespace invalidates nothing and returns 0.
func (v *Invalidator) Namespace(ctx context.Context, name string) (int64, error) {
	if !slices.Contains(v.namespaces, name) {
		return 0, nil
	}
	key := v.keys.Namespace(name)
	version, err := nsBump.Run(ctx, v.rdb, []string{key}).Int64()
	if err != nil {
		v.metrics.Error(ctx, anyResource, PatternNamespace, "bump", key, err)
		return 0, fmt.Errorf("invalidate namespace %s: %w: %w", name, ErrUnavailable, err)
	}
	retired := EscapeGlob(v.keys.namespacePages(name)+strconv.FormatInt(version-1, 10)+":") + "*"
	return v.scanUnlink(ctx, retired)
}

// protected reports whether a logical key is structural (never deleted by
// keys or pattern).
func protected(logical string) bool {
	for _, p := range protectedPrefixes {
		if strings.HasPrefix(logical, p) {
			return true
		}
	}
	return false
}

// EscapeGlob returns s with Redis glob metacharacters (* ? [ ] \) escaped,
// so that it matches only itself.
func EscapeGlob(s string) string {
	if !strings.ContainsAny(s, `*?[]\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
