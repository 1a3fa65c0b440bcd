package domain

// Change is what a write of AnalysisRepository returns about the row it
// recorded in the invalidation log (the cache_outbox table), in the same
// statement as the change itself. The writer passes ID to cache.Log.Commit;
// what to invalidate is read back from the log (repository implements
// cache.ChangeStore), never from here.
type Change struct {
	// ID is the log's sequence number; 0 means "nothing changed, nothing logged".
	ID int64
}
