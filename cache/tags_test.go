package cache

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"
)

// fillTagged writes key with ttl under tags, reading the generations first
// as a filler does before its load.
func fillTagged(t *testing.T, f *listsFixture, tg *Tags, key string, ttl time.Duration, tags ...string) bool {
	t.Helper()
	ctx := context.Background()
	gens := make([]string, len(tags))
	for i, tag := range tags {
		v, err := f.rdb.Get(ctx, f.keys.TagGeneration(tag)).Result()
		if err != nil {
			v = "0"
		}
		gens[i] = v
	}
	ok, err := tg.fill(ctx, key, f.codec.Value(0, []byte("body of "+key)), ttl, tags, gens)
	if err != nil {
		t.Fatalf("fill %s: %v", key, err)
	}
	return ok
}

func TestTagSetOutlivesItsLongestMember(t *testing.T) {
	f := newListsFixture(t)
	tg := NewTags(f.backend())
	ctx := context.Background()
	set := f.keys.Tag("t")

	// A set that exists without a TTL (PEXPIRE GT would leave it so) gets one.
	f.rdb.SAdd(ctx, set, f.keys.Prefix+"stray")
	fillTagged(t, f, tg, f.keys.Prefix+"long", time.Minute, "t")
	if pttl := f.rdb.PTTL(ctx, set).Val(); pttl < 59*time.Second {
		t.Fatalf("set PTTL %v after a 1m member, want >= 59s", pttl)
	}
	// A shorter member leaves it; a longer one extends it.
	fillTagged(t, f, tg, f.keys.Prefix+"short", 10*time.Second, "t")
	if pttl := f.rdb.PTTL(ctx, set).Val(); pttl < 59*time.Second {
		t.Fatalf("set PTTL %v after a shorter member, want >= 59s", pttl)
	}
	fillTagged(t, f, tg, f.keys.Prefix+"longer", 5*time.Minute, "t")
	longest := f.rdb.PTTL(ctx, f.keys.Prefix+"longer").Val()
	if pttl := f.rdb.PTTL(ctx, set).Val(); pttl < longest {
		t.Fatalf("set PTTL %v, shorter than its member's %v", pttl, longest)
	}
}

// A member added while an invalidation is popping batches must not end up
// alive outside its tag set, where no later invalidation would find it.
// Fails when the invalidation reads the members and then deletes the set.
func TestTagInvalidationNeverOrphansAMemberAddedMeanwhile(t *testing.T) {
	f := newListsFixture(t)
	tg := NewTags(f.backend())
	ctx := context.Background()
	const n = tagBatch*2 + 7
	for i := range n {
		fillTagged(t, f, tg, f.keys.Prefix+"m"+strconv.Itoa(i), time.Minute, "t")
	}
	late := f.keys.Prefix + "late"
	tg.betweenBatches = func(string) {
		tg.betweenBatches = nil
		if !fillTagged(t, f, tg, late, time.Minute, "t") {
			t.Error("a fill after the generation bump must succeed")
		}
	}
	deleted, err := tg.Invalidate(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	if deleted < n {
		t.Fatalf("deleted %d, want at least the %d members", deleted, n)
	}
	if f.rdb.Exists(ctx, late).Val() == 1 && !f.rdb.SIsMember(ctx, f.keys.Tag("t"), late).Val() {
		t.Fatal("the member added during the invalidation is alive but no longer in its tag set")
	}
	// Whatever survived is still findable: a second invalidation leaves nothing.
	if _, err := tg.Invalidate(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	if f.rdb.Exists(ctx, late).Val() == 1 {
		t.Fatal("member survived two invalidations")
	}
}

func TestTagInvalidationCountsMembersThatExisted(t *testing.T) {
	f := newListsFixture(t)
	tg := NewTags(f.backend())
	ctx := context.Background()
	for i := range 3 {
		fillTagged(t, f, tg, f.keys.Prefix+"k"+strconv.Itoa(i), time.Minute, "a", "b")
	}
	f.rdb.Del(ctx, f.keys.Prefix+"k0") // expired member: still in the sets, not counted
	if n, err := tg.Invalidate(ctx, "a"); err != nil || n != 2 {
		t.Fatalf("Invalidate(a) = %d, %v; want 2", n, err)
	}
	if n, err := tg.Invalidate(ctx, "b", "a"); err != nil || n != 0 {
		t.Fatalf("Invalidate(b, a) after a = %d, %v; want 0 (the members are gone)", n, err)
	}
}

func TestTagFillAbortsWhenAGenerationChanged(t *testing.T) {
	f := newListsFixture(t)
	tg := NewTags(f.backend())
	ctx := context.Background()
	key := f.keys.Prefix + "v"
	ok, err := tg.fill(ctx, key, []byte("x"), time.Minute, []string{"t"}, []string{"0"})
	if err != nil || !ok {
		t.Fatalf("fill with current generations: %v %v", ok, err)
	}
	if _, err := tg.Invalidate(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	gen := f.rdb.Get(ctx, f.keys.TagGeneration("t")).Val()
	if g, _ := strconv.ParseInt(gen, 10, 64); g < 1_000_000_000_000_000 {
		t.Fatalf("a new generation counter starts at %s, want the clock in µs", gen)
	}
	if pttl := f.rdb.PTTL(ctx, f.keys.TagGeneration("t")).Val(); pttl <= 0 {
		t.Fatalf("generation PTTL %v, want a TTL", pttl)
	}
	ok, err = tg.fill(ctx, key, []byte("stale"), time.Minute, []string{"t"}, []string{"0"})
	if err != nil || ok {
		t.Fatalf("fill with a generation read before the invalidation: written=%v %v, want aborted", ok, err)
	}
	if f.rdb.Exists(ctx, key).Val() != 0 {
		t.Fatal("aborted fill wrote the value")
	}
}

// fillSet adds MaxTagMembers members to set; live ones get a key of their own.
func fillSet(t *testing.T, f *listsFixture, set string, live bool) {
	t.Helper()
	ctx := context.Background()
	pipe := f.rdb.Pipeline()
	for i := 0; i < MaxTagMembers; i += 1000 {
		members := make([]any, 0, 1000)
		for j := i; j < i+1000; j++ {
			m := fmt.Sprintf("%smember%d", f.keys.Prefix, j)
			members = append(members, m)
			if live {
				pipe.Set(ctx, m, "v", time.Minute)
			}
		}
		pipe.SAdd(ctx, set, members...)
	}
	pipe.PExpire(ctx, set, time.Minute)
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestTagSetFullOfLiveMembersIsInvalidated(t *testing.T) {
	f := newListsFixture(t)
	tg := NewTags(f.backend())
	ctx := context.Background()
	set := f.keys.Tag("big")
	fillSet(t, f, set, true)
	if fillTagged(t, f, tg, f.keys.Prefix+"one-more", time.Minute, "big") {
		t.Fatal("fill joined a set full of live members")
	}
	if n := f.rdb.SCard(ctx, set).Val(); n != 0 {
		t.Fatalf("full set still has %d members, want it invalidated", n)
	}
	if !fillTagged(t, f, tg, f.keys.Prefix+"one-more", time.Minute, "big") {
		t.Fatal("fill after the invalidation must succeed")
	}
}

// A long-lived tag fills up with members whose entries expired; a fill
// prunes those instead of dropping every live page of the tag.
func TestTagSetFullOfExpiredMembersIsPrunedNotInvalidated(t *testing.T) {
	f := newListsFixture(t)
	tg := NewTags(f.backend())
	ctx := context.Background()
	set := f.keys.Tag("big")
	fillSet(t, f, set, false)
	live := f.keys.Prefix + "live-page"
	if !fillTagged(t, f, tg, live, time.Minute, "big") {
		t.Fatal("fill refused although the set held only expired members")
	}
	if n := f.rdb.SCard(ctx, set).Val(); n >= MaxTagMembers {
		t.Fatalf("set still has %d members after pruning", n)
	}
	if !f.rdb.SIsMember(ctx, set, live).Val() || f.rdb.Exists(ctx, live).Val() != 1 {
		t.Fatal("the live page must be cached and tracked")
	}
}
