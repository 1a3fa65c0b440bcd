package cache

import (
	"context"
	"fmt"
	"testing"
	"time"
)

func BenchmarkZZPhases(b *testing.B) {
	_, wb := newWBBench(b)
	ctx := context.Background()
	var tr, td, ti, ts time.Duration
	n := 0
	for b.Loop() {
		b.StopTimer()
		if err := wb.Enqueue(ctx, wbBenchItems(wbBenchBatch)); err != nil {
			b.Fatal(err)
		}
		_ = wb.ensureGroup(ctx)
		b.StartTimer()
		t0 := time.Now()
		msgs, err := wb.read(ctx, ">", -1)
		if err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		entries := make([]wbEntry, len(msgs))
		for i, m := range msgs {
			entries[i] = wb.decodeEntry(m)
		}
		t2 := time.Now()
		ok, ins, _, err := wb.insertIsolating(ctx, entries)
		if err != nil {
			b.Fatal(err)
		}
		t3 := time.Now()
		if _, err := wb.settle(ctx, ok, ins, false); err != nil {
			b.Fatal(err)
		}
		t4 := time.Now()
		tr += t1.Sub(t0)
		td += t2.Sub(t1)
		ti += t3.Sub(t2)
		ts += t4.Sub(t3)
		n++
	}
	fmt.Printf("read %v decode %v insert %v settle %v\n", tr/time.Duration(n), td/time.Duration(n), ti/time.Duration(n), ts/time.Duration(n))
}
