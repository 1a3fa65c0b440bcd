package faults

import (
	"strings"
	"testing"
	"time"
)

// The judge must condemn real staleness and only that: these histories are
// the two reports (a v2 HIT after v3 was acknowledged, a 200 after
// a 204 DELETE), their list variants, and the concurrent or unknown
// outcomes that excuse a read.
func TestCheckJudgesHistories(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	const id, other, owner = "11111111-aaaa", "22222222-bbbb", "99999999-cccc"
	create := func(id string, s, e int) *op {
		return &op{kind: opCreate, inst: "A", start: at(s), end: at(e), status: 201, id: id, owner: owner, version: 1}
	}
	patch := func(v int64, s, e int) *op {
		return &op{kind: opPatch, inst: "A", start: at(s), end: at(e), status: 200, id: id, owner: owner, version: v}
	}
	del := func(status, s, e int) *op {
		return &op{kind: opDelete, inst: "A", start: at(s), end: at(e), status: status, id: id, owner: owner}
	}
	get := func(status int, v int64, s, e int) *op {
		return &op{kind: opGet, inst: "B", start: at(s), end: at(e), status: status, id: id, version: v, xcache: "HIT"}
	}
	list := func(k kind, items map[string]int64, s, e int) *op {
		return &op{kind: k, inst: "B", start: at(s), end: at(e), status: 200, owner: owner, items: items, count: len(items), xcache: "HIT"}
	}
	cases := []struct {
		name string
		ops  []*op
		want string // substring of the one violation; "" for none
	}{
		{"v2 read after v3 acknowledged", []*op{create(id, 0, 1), patch(2, 2, 3), patch(3, 10, 20), get(200, 2, 21, 22)}, "stale version (v2 after v3"},
		{"v2 read concurrent with the v3 patch", []*op{create(id, 0, 1), patch(2, 2, 3), patch(3, 10, 20), get(200, 2, 19, 25)}, ""},
		{"v3 read after v3 acknowledged", []*op{create(id, 0, 1), patch(3, 10, 20), get(200, 3, 21, 22)}, ""},
		{"200 after a 204", []*op{create(id, 0, 1), del(204, 10, 20), get(200, 1, 21, 22)}, "deleted analysis read back"},
		{"404 after a 204", []*op{create(id, 0, 1), del(204, 10, 20), get(404, 0, 21, 22)}, ""},
		{"404 after an acknowledged create", []*op{create(id, 0, 1), get(404, 0, 2, 3)}, "acknowledged analysis answered 404"},
		{"404 excused by a concurrent delete", []*op{create(id, 0, 1), del(204, 5, 30), get(404, 0, 2, 10)}, ""},
		{"404 excused by a delete without an answer", []*op{create(id, 0, 1), del(0, 5, 30), get(404, 0, 40, 41)}, ""},
		{"a refused delete excuses nothing", []*op{create(id, 0, 1), del(412, 5, 6), get(404, 0, 40, 41)}, "answered 404"},
		{"list at an old version", []*op{create(id, 0, 1), patch(2, 10, 20), list(opList, map[string]int64{id: 1}, 21, 22)}, "listed at v1 after v2"},
		{"user list keeps a deleted id", []*op{create(id, 0, 1), create(other, 0, 1), del(204, 10, 20), list(opUserList, map[string]int64{id: 1, other: 1}, 21, 22)}, "deleted analysis 11111111 listed"},
		{"list misses a created id", []*op{create(id, 0, 1), create(other, 5, 6), list(opList, map[string]int64{id: 1}, 7, 8)}, "acknowledged analysis 22222222 missing"},
		{"list before the create was acknowledged", []*op{create(id, 0, 1), create(other, 5, 9), list(opList, map[string]int64{id: 1}, 7, 8)}, ""},
		{"incomplete page", []*op{create(id, 0, 1), create(other, 5, 6), {kind: opList, inst: "B", start: at(7), end: at(8), status: 200, owner: owner, items: map[string]int64{id: 1}, count: 2}}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for i, o := range c.ops {
				o.seq = i + 1
			}
			got := check(c.ops)
			switch {
			case c.want == "" && len(got) != 0:
				t.Fatalf("want no violation, got %s", got[0].describe(t0))
			case c.want != "" && len(got) != 1:
				t.Fatalf("want one violation %q, got %d", c.want, len(got))
			case c.want != "" && !strings.Contains(got[0].describe(t0), c.want):
				t.Fatalf("want %q, got %s", c.want, got[0].describe(t0))
			}
		})
	}
}
