package main

import "time"

// plan sizes one run: how long each scenario runs and how much is seeded.
type plan struct {
	Name      string
	Warmup    time.Duration
	Duration  time.Duration
	ItemRows  int // analyses whose ids the item-read scenarios use
	StatsRows int // total rows for the stats scenarios (ItemRows included)
	HotIDs    int // ids of the cached-GET scenario, read once before it
	Stampede  int // concurrent cold stats requests
	BulkItems int // analyses per bulk request
	BulkConns int // wrk connections of the bulk scenario (bodies are large)
	// BulkDuration is the measured bulk run: shorter, because every item
	// it accepts waits in Redis until the flush scenario commits it.
	BulkDuration time.Duration
	conns        int
}

var (
	fullPlan = plan{Name: "full", Warmup: 3 * time.Second, Duration: 10 * time.Second,
		ItemRows: 100_000, StatsRows: 1_000_000, HotIDs: 10_000, Stampede: 500, BulkItems: 1000, BulkConns: 4, BulkDuration: 5 * time.Second}
	quickPlan = plan{Name: "quick", Warmup: time.Second, Duration: 3 * time.Second,
		ItemRows: 50_000, StatsRows: 100_000, HotIDs: 2_000, Stampede: 500, BulkItems: 1000, BulkConns: 4, BulkDuration: 2 * time.Second}
)
