package cache

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/analysis-cache/service/domain"
)

// WriteBehind is write-behind ingest through a Redis Stream
// (docs/design.md, keys "wb:stream" and "wb:dead"). Its guarantees:
//
//   - Accepted means durable in Redis: Enqueue writes every analysis to its
//     cache key (with a TTL) and appends it to the stream in ONE Lua script,
//     so it returns nil only after Redis executed both for every item, and a
//     crash of Redis or of this process leaves either all of a call's items
//     or none. Each id is readable at once through cache-aside: the entry
//     is a value written behind (kind W), a HIT reported with the pattern
//     "write-behind" (X-Cache-Pattern).
//   - Enqueue never overwrites a real value (kind V, or the W of an earlier
//     ingest): an id that already exists keeps its cached value, and
//     Postgres keeps its row. A negative
//     entry, a tombstone or a lease is replaced (a re-ingested deleted id is
//     recreated).
//   - An item with a client-given id never shadows a committed row: Enqueue
//     looks the client-given ids of the call up in Postgres (one query,
//     ExistingIDs). An id found there gets no cache entry (its key is left
//     as it is, so reads keep loading the committed row); when Postgres
//     does not answer, no client-given id gets a W entry, and a negative
//     entry, tombstone or lease at its key is unlinked, so reads load from
//     Postgres until the flush. The item is queued either way (the flush
//     inserts it only if its id is absent then). Ids the caller generated
//     are written behind without a lookup.
//   - Backpressure is exact: the script checks XLEN + n against MaxPending
//     and appends in the same atomic step, and flushed entries are deleted
//     (XACK + XDEL together), so XLEN is the backlog not yet in Postgres.
//     Over it: EQUEUEFULL. Redis unreachable: EQUEUEUNAVAILABLE.
//   - Nothing accepted is lost: an entry leaves the stream only after its
//     row is committed (XACK after commit) or after it was copied to the
//     dead-letter stream with its error, in the same script that acks it.
//     Entries of a crashed consumer stay pending and are claimed
//     (XAUTOCLAIM after ClaimIdle) by any flusher, this one after a restart
//     included; Postgres outages are retried with backoff, never dead-lettered.
//   - Idempotent flush: InsertMissing inserts only absent ids, and the
//     settle script touches the cache only for entries it acked itself, so a
//     batch flushed twice (two consumers, a replay, an admin flush racing the
//     loop) creates nothing new and never corrupts the cache.
//   - After a flush the cache never disagrees with Postgres: an entry whose
//     id was not inserted (another row won) has its cached value unlinked
//     when it still holds that entry's bytes; for an inserted id the W
//     entry stays (it is now the committed row), and a stale "not found", a
//     lease or another ingest's value is unlinked. Lists and
//     owner tags are invalidated (ChangeListener) after each commit.
//   - A poison entry (undecodable, or rejected by Postgres) never blocks the
//     others: a failed batch is bisected down to single rows, the rest are
//     committed, and the poison goes to "wb:dead" with its error once it was
//     delivered MaxAttempts times. Dead letters are counted, never dropped.
//   - Notes never reach Redis in plain text: the stream carries the same
//     sealed entry as the cache (Codec), so a flusher needs the same
//     CACHE_ENCRYPTION_KEY; entries sealed with a key no process holds any
//     more end in the dead-letter stream (README, "Encryption key").
//
// The stream keys are never touched by invalidation (they are not under
// "analysis:*" or any other pattern the invalidator deletes). Enqueue is one
// multi-key script: on Redis Cluster the prefix must carry a hash tag
// ("{app}:") so every key lives in one slot.
//
// A WriteBehind is safe for concurrent use.
type WriteBehind struct {
	rdb     Client
	keys    Keys
	codec   *Codec
	repo    domain.AnalysisRepository
	lists   ChangeListener
	metrics *Metrics
	log     *slog.Logger
	opt     WriteBehindOptions

	stream, dead string
	groupReady   atomic.Bool // the consumer group exists (reset on NOGROUP)

	// flushMu serialises the commits of this process's flushers (the Run
	// loop, Flush and Stop), so two of them never insert the same rows at
	// once; correctness across processes does not depend on it. Settling
	// in Redis happens outside it (writebehind_pipeline.go).
	flushMu sync.Mutex

	mu     sync.Mutex         // guards cancel and done
	cancel context.CancelFunc // stops the running Run
	done   chan struct{}      // closed when the running Run returned

	// afterFlushArrival is a test hook run by Flush once it has counted the
	// entries it must account for, before it flushes them.
	afterFlushArrival func()
	// afterCommit is a test hook run after a batch is committed to Postgres
	// and before it is acknowledged in Redis, to simulate a crash there.
	afterCommit func() error
	// afterBatchCommit is a test hook run when a batch's commit returned,
	// before its settle is started: the point where the next batch commits
	// while the previous one settles.
	afterBatchCommit func()
}

// WriteBehindOptions configures a WriteBehind. Zero values take the
// contract's defaults: BatchSize 100, FlushInterval 5s, ClaimIdle 30s,
// EntryTTL 1h, MaxPending 100000, MaxAttempts 5, Consumer "<host>-<pid>".
type WriteBehindOptions struct {
	BatchSize     int           // entries read and inserted per statement (WRITE_BEHIND_BATCH_SIZE)
	FlushInterval time.Duration // longest block on an empty stream (WRITE_BEHIND_FLUSH_INTERVAL)
	ClaimIdle     time.Duration // pending this long on any consumer → claimed (WRITE_BEHIND_CLAIM_IDLE)
	EntryTTL      time.Duration // TTL of the cache entry Enqueue writes (CACHE_TTL)
	MaxPending    int64         // backlog above which Enqueue answers EQUEUEFULL (WRITE_BEHIND_MAX_PENDING)
	MaxAttempts   int           // deliveries of a failing entry before it is dead-lettered (WRITE_BEHIND_MAX_ATTEMPTS)
	Consumer      string        // this process's consumer name in the group; unique per live process
	Jitter        float64       // ±fraction applied to EntryTTL (CACHE_TTL_JITTER)
	// Log settles the change each commit recorded in the invalidation log
	// (nil: the list invalidation runs unsettled, for tests of the flusher alone).
	Log *Log
	// Tracer starts a "write-behind flush" span around each batch's commit,
	// the parent of the batch's statements and of its settle's Redis calls
	// (default: a no-op tracer).
	Tracer trace.Tracer
}

// wbGroup is the consumer group of every flusher of the stream.
const wbGroup = "flushers"

// streamKey is the write-behind stream: "wb:stream".
func streamKey(k Keys) string { return k.Prefix + "wb:stream" }

// deadLetterKey is the dead-letter stream: "wb:dead".
func deadLetterKey(k Keys) string { return k.Prefix + "wb:dead" }

// NewWriteBehind returns a WriteBehind that enqueues on rdb and flushes into
// repo, telling lists which owners changed after each commit. Call Run to
// start flushing and Stop to drain.
func NewWriteBehind(rdb Client, keys Keys, codec *Codec, repo domain.AnalysisRepository, lists ChangeListener, m *Metrics, log *slog.Logger, opt WriteBehindOptions) *WriteBehind {
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
	if log == nil {
		log = slog.Default()
	}
	return &WriteBehind{
		rdb: rdb, keys: keys, codec: codec, repo: repo, lists: lists, metrics: m, log: log, opt: opt,
		stream: streamKey(keys), dead: deadLetterKey(keys),
	}
}

// existsTimeout bounds Enqueue's lookup of client-given ids, so a Postgres
// that hangs delays an ingest by at most this long; past it the ids count
// as unverified (no W entry), never as absent.
const existsTimeout = time.Second

// Enqueue accepts items: it sets Version to 1 and CreatedAt = UpdatedAt to
// now (UTC, microseconds) on each item in place, then caches and appends
// them all in one Redis round trip. items must have their ids set (the
// caller keeps a client's id or generates one); generated[i] reports that
// the caller generated items[i].ID for this call (nil: every id is
// client-given). A client-given id is cached as a W entry only when
// Postgres confirmed it does not exist (see the type's guarantees). It
// returns nil only once Redis confirmed every item; EQUEUEFULL when the
// backlog would exceed MaxPending (nothing is written); EQUEUEUNAVAILABLE
// when Redis failed. A failed lookup in Postgres is logged and never fails
// the ingest.
//
// A Redis failure after the script ran (a lost reply) is ambiguous: the
// items may be queued although the caller got an error. They are then
// flushed normally; a retry with the same ids is harmless.
func (w *WriteBehind) Enqueue(ctx context.Context, items []domain.Analysis, generated []bool) error {
	if len(items) == 0 {
		return nil
	}
	existing, verified := w.lookUpGiven(ctx, items, generated)
	now := time.Now().UTC().Truncate(time.Microsecond)
	keys := make([]string, 1, 1+len(items))
	keys[0] = w.stream
	args := make([]any, 1, 1+4*len(items))
	args[0] = w.opt.MaxPending
	var body []byte
	for i := range items {
		a := &items[i]
		a.Version, a.CreatedAt, a.UpdatedAt = 1, now, now
		body = a.AppendJSON(body[:0])
		mode := wbCache
		switch {
		case generated != nil && generated[i]:
		case !verified:
			mode = wbUnverified
		case existing[a.ID]:
			mode = wbExists
		}
		keys = append(keys, w.keys.Entity("analysis", a.ID.String()))
		args = append(args, a.ID.String(), w.codec.WrittenBehind(1, body), spreadTTL(w.opt.EntryTTL, w.opt.Jitter).Milliseconds(), mode)
	}
	n, err := wbEnqueue.Run(ctx, w.rdb, keys, args...).Int64()
	if err != nil {
		w.metrics.Error(ctx, "analysis", PatternWriteBehind, "enqueue", w.stream, err)
		return domain.Wrap(domain.EQUEUEUNAVAILABLE, "Write-behind queue unavailable",
			fmt.Errorf("enqueue %d analyses: %w", len(items), err))
	}
	if n < 0 {
		return domain.Errorf(domain.EQUEUEFULL, "Write-behind queue is full")
	}
	return nil
}

// The cache modes of wbEnqueue, one per item.
const (
	wbCache      = "W" // the id is new: write the W entry unless a real value is cached
	wbUnverified = "U" // the id may exist: unlink a non-value so reads load from Postgres
	wbExists     = "E" // the id exists: leave its key alone
)

// lookUpGiven returns which client-given ids of items exist in Postgres.
// verified is false when Postgres did not answer; existing is then nil.
// With no client-given id it answers verified without a query.
func (w *WriteBehind) lookUpGiven(ctx context.Context, items []domain.Analysis, generated []bool) (existing map[uuid.UUID]bool, verified bool) {
	var given []uuid.UUID
	for i := range items {
		if generated == nil || !generated[i] {
			given = append(given, items[i].ID)
		}
	}
	if len(given) == 0 {
		return nil, true
	}
	lctx, cancel := context.WithTimeout(ctx, existsTimeout)
	defer cancel()
	found, err := w.repo.ExistingIDs(lctx, given)
	if err != nil {
		w.log.WarnContext(ctx, "write-behind: client-given ids not looked up in Postgres; they are queued but not cached until flushed",
			slog.Int("ids", len(given)), slog.Any("error", err))
		return nil, false
	}
	existing = make(map[uuid.UUID]bool, len(found))
	for _, id := range found {
		existing[id] = true
	}
	return existing, true
}

// Pending returns the backlog: entries accepted and not yet committed to
// Postgres nor dead-lettered (the stream's length, since flushed entries
// are deleted). It is CacheStats.write_behind.pending.
func (w *WriteBehind) Pending(ctx context.Context) (int64, error) {
	n, err := w.rdb.XLen(ctx, w.stream).Result()
	if err != nil {
		w.metrics.Error(ctx, "analysis", PatternWriteBehind, "xlen", w.stream, err)
		return 0, fmt.Errorf("write-behind pending: %w", err)
	}
	return n, nil
}

// DeadLettered returns the number of entries in the dead-letter stream,
// across every process (the metric counts only this process's).
func (w *WriteBehind) DeadLettered(ctx context.Context) (int64, error) {
	n, err := w.rdb.XLen(ctx, w.dead).Result()
	if err != nil {
		w.metrics.Error(ctx, "analysis", PatternWriteBehind, "xlen", w.dead, err)
		return 0, fmt.Errorf("write-behind dead letters: %w", err)
	}
	return n, nil
}
