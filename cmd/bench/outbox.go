package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// outboxSize is one look at the invalidation log: all its rows, and those
// no process has applied to Redis yet.
type outboxSize struct {
	Rows    int64
	Pending int64
}

// grow raises each count of s to the other's where that is higher.
func (s *outboxSize) grow(o outboxSize) {
	s.Rows = max(s.Rows, o.Rows)
	s.Pending = max(s.Pending, o.Pending)
}

// outboxWatch polls the size of cache_outbox on a connection of its own
// while a scenario runs, and keeps the peaks: overall, and per turn label
// (set with turn) so interleaved loads each get the peak seen during their
// own turns. Rows and pending peak independently.
type outboxWatch struct {
	every time.Duration

	mu      sync.Mutex
	label   string
	peak    outboxSize
	byLabel map[string]outboxSize
	samples int
	err     error

	stopOnce sync.Once
	cancel   context.CancelFunc
	done     chan struct{}
}

const outboxSizeSQL = `SELECT count(*), count(*) FILTER (WHERE applied_at IS NULL) FROM cache_outbox`

// watchOutbox connects to the database of url and polls every every until
// stop. The first sample is taken before it returns.
func watchOutbox(ctx context.Context, url string, every time.Duration) (*outboxWatch, error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("connect to watch cache_outbox: %w", err)
	}
	w := &outboxWatch{every: every, byLabel: map[string]outboxSize{}, done: make(chan struct{})}
	if err := w.sample(ctx, conn); err != nil {
		conn.Close(ctx)
		return nil, err
	}
	ctx, w.cancel = context.WithCancel(ctx)
	go func() {
		defer close(w.done)
		defer conn.Close(context.Background())
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := w.sample(ctx, conn); err != nil {
					if ctx.Err() == nil {
						w.mu.Lock()
						w.err = err
						w.mu.Unlock()
					}
					return
				}
			}
		}
	}()
	return w, nil
}

func (w *outboxWatch) sample(ctx context.Context, conn *pgx.Conn) error {
	var s outboxSize
	if err := conn.QueryRow(ctx, outboxSizeSQL).Scan(&s.Rows, &s.Pending); err != nil {
		return fmt.Errorf("size of cache_outbox: %w", err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.samples++
	w.peak.grow(s)
	p := w.byLabel[w.label]
	p.grow(s)
	w.byLabel[w.label] = p
	return nil
}

// turn attributes the samples from now on to label.
func (w *outboxWatch) turn(label string) {
	w.mu.Lock()
	w.label = label
	w.mu.Unlock()
}

// stop ends the polling and returns the first error it met, if any.
func (w *outboxWatch) stop() error {
	w.stopOnce.Do(func() {
		w.cancel()
		<-w.done
	})
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// peaks returns the overall peak, the peak per label and the sample count.
func (w *outboxWatch) peaks() (outboxSize, map[string]outboxSize, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	by := make(map[string]outboxSize, len(w.byLabel))
	for k, v := range w.byLabel {
		by[k] = v
	}
	return w.peak, by, w.samples
}
