package cache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// WriteBehind is write-behind ingest of one resource's entities through a
// Redis Stream (docs/write-behind.md; keys "wb:{Kind}:stream" and
// "wb:{Kind}:dead" by default, WriteBehindOptions.Streams). Its guarantees:
//
//   - Accepted means durable in Redis: Enqueue writes every entity to its
//     cache key "{Kind}:{id}" (with a TTL) and appends it to the stream in
//     ONE Lua script, so it returns nil only after Redis executed both for
//     every item, and a crash of Redis or of this process leaves either all
//     of a call's items or none. Each id is readable at once through
//     cache-aside: the entry is a value written behind (kind W, at the
//     entity's version), a HIT reported with the pattern "write-behind"
//     (X-Cache-Pattern).
//   - Enqueue never overwrites a real value (kind V, or the W of an earlier
//     ingest): an id that already exists keeps its cached value, and
//     the store keeps its row. A negative
//     entry, a tombstone or a lease is replaced (a re-ingested deleted id is
//     recreated).
//   - An item with a client-given id never shadows a committed row: Enqueue
//     looks the client-given ids of the call up in the store (one query,
//     BulkStore.ExistingIDs). An id found there gets no cache entry (its key
//     is left as it is, so reads keep loading the committed row); when the
//     store does not answer, no client-given id gets a W entry, and a
//     negative entry, tombstone or lease at its key is unlinked, so reads
//     load from the store until the flush. The item is queued either way
//     (the flush inserts it only if its id is absent then). Ids the caller
//     generated are written behind without a lookup.
//   - Backpressure is exact: the script checks XLEN + n against MaxPending
//     and appends in the same atomic step, and flushed entries are deleted
//     (XACK + XDEL together), so XLEN is the backlog not yet in the store.
//     Over it: ErrQueueFull. Redis unreachable: ErrQueueUnavailable.
//   - Nothing accepted is lost: an entry leaves the stream only after its
//     row is committed (XACK after commit) or after it was copied to the
//     dead-letter stream with its error, in the same script that acks it.
//     Entries of a crashed consumer stay pending and are claimed
//     (XAUTOCLAIM after ClaimIdle) by any flusher, this one after a restart
//     included; store outages (ErrStoreUnavailable) are retried with
//     backoff, never dead-lettered.
//   - Idempotent flush: BulkStore.InsertMissing inserts only absent ids, and
//     the settle script touches the cache only for entries it acked itself,
//     so a batch flushed twice (two consumers, a replay, an admin flush
//     racing the loop) creates nothing new and never corrupts the cache.
//   - After a flush the cache never disagrees with the store: an entry whose
//     id was not inserted (another row won) has its cached value unlinked
//     when it still holds that entry's bytes; for an inserted id the W
//     entry stays (it is now the committed row), and a stale "not found", a
//     lease or another ingest's value is unlinked (a later write, or a
//     tombstone, is kept). The lists of the entities' groups are
//     invalidated (ChangeListener) after each commit, settled in the Log.
//   - A poison entry (undecodable, or rejected by the store) never blocks
//     the others: a failed batch is bisected down to single rows, the rest
//     are committed, and the poison goes to the dead-letter stream with its
//     error once it was delivered MaxAttempts times. Dead letters are
//     counted, never dropped.
//   - Bodies never reach Redis in plain text: the stream carries the same
//     sealed entry as the cache (Codec), so a flusher needs the same
//     CACHE_ENCRYPTION_KEY; entries sealed with a key no process holds any
//     more end in the dead-letter stream (README, "Encryption key").
//
// The stream keys are never touched by invalidation (the Invalidator
// protects "wb:*", and they are not under "{Kind}:*"). Each resource has
// its own streams, so two WriteBehinds of different resources never read
// each other's entries. Enqueue is one multi-key script: on Redis Cluster
// the prefix must carry a hash tag ("{app}:") so every key lives in one slot.
//
// A WriteBehind is safe for concurrent use.
type WriteBehind[T any] struct {
	rdb      Client
	keys     Keys
	codec    *Codec
	resource Resource
	store    BulkStore[T]
	ent      EntityCodec[T]
	lists    ChangeListener
	metrics  *Metrics
	log      *slog.Logger
	opt      WriteBehindOptions

	stream, dead string
	groupReady   atomic.Bool // the consumer group exists (reset on NOGROUP)

	// flushMu serialises the commits of this process's flushers (the Run
	// loop, Flush and Stop), so two of them never insert the same rows at
	// once; correctness across processes does not depend on it. Settling
	// in Redis happens outside it (writebehind_pipeline.go).
	flushMu sync.Mutex

	mu      sync.Mutex         // guards cancel, done and stopped
	stopped bool               // Stop began: Run never starts again
	cancel  context.CancelFunc // stops the running Run
	done    chan struct{}      // closed when the running Run returned

	// afterFlushArrival is a test hook run by Flush once it has counted the
	// entries it must account for, before it flushes them.
	afterFlushArrival func()
	// afterCommit is a test hook run after a batch is committed to the
	// store and before it is acknowledged in Redis, to simulate a crash there.
	afterCommit func() error
	// afterBatchCommit is a test hook run when a batch's commit returned,
	// before its settle is started: the point where the next batch commits
	// while the previous one settles.
	afterBatchCommit func()
}

// BulkStore is the store a WriteBehind flushes into and looks client-given
// ids up in. Errors that mean the store cannot be reached (retry later,
// nothing is wrong with the items) must wrap ErrStoreUnavailable: such a
// batch is retried with backoff and never dead-lettered. Any other error
// of InsertMissing is taken as a rejection of the items: the batch is
// bisected to find the rows the store refuses.
type BulkStore[T any] interface {
	// InsertMissing inserts, in one statement, the items whose id is not
	// stored yet and leaves existing rows untouched; items have distinct
	// ids. It returns the ids it inserted and the id of the change it
	// recorded in the invalidation log atomically with them (0: nothing
	// inserted, nothing logged). Replaying the same items inserts nothing.
	InsertMissing(ctx context.Context, items []T) (inserted []string, change int64, err error)
	// ExistingIDs returns those of ids that are stored, in one query, in
	// no particular order.
	ExistingIDs(ctx context.Context, ids []string) ([]string, error)
}

// EntityCodec is what a WriteBehind needs to know about its entities: the
// exact body cached and queued (Encoding: Parse(Append(nil, v)) must equal
// v), and the id, group and version of a value.
type EntityCodec[T any] interface {
	Encoding[T]
	// ID is v's id, the "{id}" of its cache key "{Kind}:{id}".
	ID(v T) string
	// Group is the group whose lists contain v (Resource.Group), "" when
	// v is in no per-group list.
	Group(v T) string
	// Version is v's version, at least 1: the version of its W entry,
	// which the row has once inserted.
	Version(v T) int64
}

// The errors of write-behind, wrapped with context.
var (
	// ErrQueueFull: the backlog would exceed WriteBehindOptions.MaxPending;
	// nothing of the call was written.
	ErrQueueFull = errors.New("write-behind queue is full")
	// ErrQueueUnavailable: Redis failed a call of the queue.
	ErrQueueUnavailable = errors.New("write-behind queue unavailable")
	// ErrStoreUnavailable is wrapped by a BulkStore's errors that mean the
	// store cannot be reached (see BulkStore).
	ErrStoreUnavailable = errors.New("store unavailable")
)

// WriteBehindOptions configures a WriteBehind. Zero values take the
// contract's defaults: BatchSize 100, FlushInterval 5s, ClaimIdle 30s,
// EntryTTL 1h, MaxPending 100000, MaxAttempts 5, Consumer "<host>-<pid>".
type WriteBehindOptions struct {
	BatchSize     int           // entries read and inserted per statement (WRITE_BEHIND_BATCH_SIZE)
	FlushInterval time.Duration // longest block on an empty stream (WRITE_BEHIND_FLUSH_INTERVAL)
	ClaimIdle     time.Duration // pending this long on any consumer → claimed (WRITE_BEHIND_CLAIM_IDLE)
	EntryTTL      time.Duration // TTL of the cache entry Enqueue writes (CACHE_TTL)
	MaxPending    int64         // backlog above which Enqueue answers ErrQueueFull (WRITE_BEHIND_MAX_PENDING)
	MaxAttempts   int           // deliveries of a failing entry before it is dead-lettered (WRITE_BEHIND_MAX_ATTEMPTS)
	Consumer      string        // this process's consumer name in the group; unique per live process
	Jitter        float64       // ±fraction applied to EntryTTL (CACHE_TTL_JITTER)
	// Log settles the change each commit recorded in the invalidation log
	// (nil: the list invalidation runs unsettled, for tests of the flusher
	// alone). It must track the resource already (NewWriteThrough or
	// Log.Track): a change it could not settle would otherwise be applied by
	// no process. NewWriteBehind panics when it does not.
	Log *Log
	// Tracer starts a "write-behind flush" span around each batch's commit,
	// the parent of the batch's statements and of its settle's Redis calls
	// (default: a no-op tracer).
	Tracer trace.Tracer
	// Streams is the logical prefix of the resource's two streams,
	// "{Streams}stream" and "{Streams}dead" (default "wb:{Kind}:"). It always
	// starts with "wb:" (prepended when missing), which invalidation never
	// deletes. Analyses keep "wb:" (streams "wb:stream" and "wb:dead"), so the
	// entries a running deployment accepted stay where its flushers read them.
	Streams string
}

// wbGroup is the consumer group of every flusher of a stream.
const wbGroup = "flushers"

// streamsOf returns the logical stream prefix of kind: Streams, or "wb:{kind}:".
func streamsOf(opt WriteBehindOptions, kind string) string {
	p := opt.Streams
	if p == "" {
		p = "wb:" + kind + ":"
	}
	if !strings.HasPrefix(p, "wb:") {
		p = "wb:" + p
	}
	return p
}

// streamKey is the write-behind stream under the stream prefix: "{streams}stream".
func streamKey(k Keys, streams string) string { return k.Prefix + streams + "stream" }

// deadLetterKey is the dead-letter stream under the stream prefix: "{streams}dead".
func deadLetterKey(k Keys, streams string) string { return k.Prefix + streams + "dead" }

// NewWriteBehind returns the WriteBehind of resource on b: it enqueues on
// b.Redis, flushes into store, reads entities with ent, and tells lists
// (nil: the resource has no cached lists) which groups changed after each
// commit. Call Run to start flushing and Stop to drain.
func NewWriteBehind[T any](b Backend, resource Resource, store BulkStore[T], ent EntityCodec[T], lists ChangeListener, opt WriteBehindOptions) *WriteBehind[T] {
	if opt.Log != nil && !opt.Log.Tracks(resource.Kind) {
		panic(fmt.Sprintf("cache: NewWriteBehind(%q): the Log does not track the resource; wire its WriteThrough (or Log.Track) first", resource.Kind))
	}
	b = b.withDefaults()
	if opt.BatchSize <= 0 {
		opt.BatchSize = 100
	}
	if opt.FlushInterval <= 0 {
		opt.FlushInterval = 5 * time.Second
	}
	if opt.ClaimIdle <= 0 {
		opt.ClaimIdle = 30 * time.Second
	}
	if opt.EntryTTL <= 0 {
		opt.EntryTTL = time.Hour
	}
	if opt.MaxPending <= 0 {
		opt.MaxPending = 100000
	}
	if opt.MaxAttempts <= 0 {
		opt.MaxAttempts = 5
	}
	if opt.Consumer == "" {
		host, _ := os.Hostname()
		opt.Consumer = host + "-" + strconv.Itoa(os.Getpid())
	}
	opt.Jitter = clampJitter(opt.Jitter)
	if opt.Tracer == nil {
		opt.Tracer = noop.Tracer{}
	}
	return &WriteBehind[T]{
		rdb: b.Redis, keys: b.Keys, codec: b.Codec, resource: resource, store: store, ent: ent, lists: lists,
		metrics: b.Metrics, log: b.Logger, opt: opt,
		stream: streamKey(b.Keys, streamsOf(opt, resource.Kind)), dead: deadLetterKey(b.Keys, streamsOf(opt, resource.Kind)),
	}
}

// existsTimeout bounds Enqueue's lookup of client-given ids, so a store
// that hangs delays an ingest by at most this long; past it the ids count
// as unverified (no W entry), never as absent.
const existsTimeout = time.Second

// Enqueue accepts items, complete as they are to be stored (the caller sets
// their ids, versions and timestamps), and caches and appends them all in
// one Redis round trip. generated[i] reports that the caller generated the
// id of items[i] for this call (nil: every id is client-given). A
// client-given id is cached as a W entry only when the store confirmed it
// does not exist (see the type's guarantees). It returns nil only once
// Redis confirmed every item; an error wrapping ErrQueueFull when the
// backlog would exceed MaxPending (nothing is written), ErrQueueUnavailable
// when Redis failed. A failed lookup in the store is logged and never
// fails the ingest.
//
// A Redis failure after the script ran (a lost reply) is ambiguous: the
// items may be queued although the caller got an error. They are then
// flushed normally; a retry with the same ids is harmless.
func (w *WriteBehind[T]) Enqueue(ctx context.Context, items []T, generated []bool) error {
	if len(items) == 0 {
		return nil
	}
	existing, verified := w.lookUpGiven(ctx, items, generated)
	keys := make([]string, 1, 1+len(items))
	keys[0] = w.stream
	args := make([]any, 1, 1+4*len(items))
	args[0] = w.opt.MaxPending
	var body []byte
	for i, v := range items {
		id := w.ent.ID(v)
		body = w.ent.Append(body[:0], v)
		mode := wbCache
		switch {
		case generated != nil && generated[i]:
		case !verified:
			mode = wbUnverified
		case existing[id]:
			mode = wbExists
		}
		keys = append(keys, w.keys.Entity(w.resource.Kind, id))
		args = append(args, id, w.codec.WrittenBehind(w.ent.Version(v), body), spreadTTL(w.opt.EntryTTL, w.opt.Jitter).Milliseconds(), mode)
	}
	n, err := wbEnqueue.Run(ctx, w.rdb, keys, args...).Int64()
	if err != nil {
		w.metrics.Error(ctx, w.resource.Kind, PatternWriteBehind, "enqueue", w.stream, err)
		return fmt.Errorf("%w: enqueue %d %s entities: %w", ErrQueueUnavailable, len(items), w.resource.Kind, err)
	}
	if n < 0 {
		return fmt.Errorf("enqueue %d %s entities over a backlog limit of %d: %w", len(items), w.resource.Kind, w.opt.MaxPending, ErrQueueFull)
	}
	return nil
}

// The cache modes of wbEnqueue, one per item.
const (
	wbCache      = "W" // the id is new: write the W entry unless a real value is cached
	wbUnverified = "U" // the id may exist: unlink a non-value so reads load from the store
	wbExists     = "E" // the id exists: leave its key alone
)

// lookUpGiven returns which client-given ids of items exist in the store.
// verified is false when the store did not answer; existing is then nil.
// With no client-given id it answers verified without a query.
func (w *WriteBehind[T]) lookUpGiven(ctx context.Context, items []T, generated []bool) (existing map[string]bool, verified bool) {
	var given []string
	for i, v := range items {
		if generated == nil || !generated[i] {
			given = append(given, w.ent.ID(v))
		}
	}
	if len(given) == 0 {
		return nil, true
	}
	lctx, cancel := context.WithTimeout(ctx, existsTimeout)
	defer cancel()
	found, err := w.store.ExistingIDs(lctx, given)
	if err != nil {
		w.log.WarnContext(ctx, "write-behind: client-given ids not looked up in the store; they are queued but not cached until flushed",
			slog.String("resource", w.resource.Kind), slog.Int("ids", len(given)), slog.Any("error", err))
		return nil, false
	}
	existing = make(map[string]bool, len(found))
	for _, id := range found {
		existing[id] = true
	}
	return existing, true
}

// Pending returns the backlog: entries accepted and not yet committed to
// the store nor dead-lettered (the stream's length, since flushed entries
// are deleted). It is CacheStats.write_behind.pending.
func (w *WriteBehind[T]) Pending(ctx context.Context) (int64, error) {
	n, err := w.rdb.XLen(ctx, w.stream).Result()
	if err != nil {
		w.metrics.Error(ctx, w.resource.Kind, PatternWriteBehind, "xlen", w.stream, err)
		return 0, fmt.Errorf("write-behind pending: %w", err)
	}
	return n, nil
}

// DeadLettered returns the number of entries in the dead-letter stream,
// across every process (the metric counts only this process's).
func (w *WriteBehind[T]) DeadLettered(ctx context.Context) (int64, error) {
	n, err := w.rdb.XLen(ctx, w.dead).Result()
	if err != nil {
		w.metrics.Error(ctx, w.resource.Kind, PatternWriteBehind, "xlen", w.dead, err)
		return 0, fmt.Errorf("write-behind dead letters: %w", err)
	}
	return n, nil
}
