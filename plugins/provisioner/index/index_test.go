package index

import (
	"math/rand"
	"slices"
	"testing"
)

// TestSearchVisitsExactlyTheAdmittedInOrder compares the tree's search
// with a scan of every item, over random entries, queries, updates and
// removals: the search must yield every item whose own entry admits the
// query, in slot order, and nothing else.
func TestSearchVisitsExactlyTheAdmittedInOrder(t *testing.T) {
	r := rand.New(rand.NewSource(7))
	ix := New[*int]()
	entries := map[*int]Entry{}
	var order []*int
	randomEntry := func() Entry {
		e := Entry{Pool: 1 << r.Intn(3), Has: uint64(r.Intn(8)), Full: uint64(r.Intn(8))}
		for i := range e.Free {
			e.Free[i] = int64(r.Intn(10))
		}
		for k := range e.Domains {
			e.Domains[k] = uint64(1 + r.Intn(7))
		}
		return e
	}
	for step := 0; step < 3000; step++ {
		switch op := r.Intn(10); {
		case op < 5 || len(order) == 0:
			item := new(int)
			*item = step
			e := randomEntry()
			ix.Add(item, e)
			entries[item] = e
			order = append(order, item)
		case op < 7:
			item := order[r.Intn(len(order))]
			e := randomEntry()
			ix.Set(item, e)
			entries[item] = e
		default:
			i := r.Intn(len(order))
			ix.Remove(order[i])
			delete(entries, order[i])
			order = slices.Delete(order, i, i+1)
		}
		if ix.Len() != len(order) {
			t.Fatalf("step %d: Len %d, want %d", step, ix.Len(), len(order))
		}
		q := Query{Pools: uint64(r.Intn(8)), Has: uint64(r.Intn(4)), NotFull: uint64(r.Intn(4))}
		for i := range q.Need {
			q.Need[i] = int64(r.Intn(8))
		}
		q.Domains[Zone] = uint64(r.Intn(8))
		var want, got []*int
		for _, item := range order {
			n := leaf(entries[item])
			if n.admits(&q) {
				want = append(want, item)
			}
		}
		ix.Search(q, func(item *int) bool {
			got = append(got, item)
			return false
		})
		if !slices.Equal(got, want) {
			t.Fatalf("step %d: search yielded %d items, a scan admits %d (or in another order)", step, len(got), len(want))
		}
	}
}

// TestSearchStopsAtTheAcceptedItem checks that the first item visit
// accepts is returned and nothing after it is visited.
func TestSearchStopsAtTheAcceptedItem(t *testing.T) {
	ix := New[string]()
	for _, name := range []string{"a", "b", "c", "d"} {
		ix.Add(name, Entry{Free: Vec{4, 4, 4, 4}, Pool: 1})
	}
	ix.Set("a", Entry{Free: Vec{1, 4, 4, 4}, Pool: 1}) // too little CPU
	var visited []string
	got, ok := ix.Search(Query{Need: Vec{2, 1, 1, 0}, Pools: 1}, func(s string) bool {
		visited = append(visited, s)
		return s == "c"
	})
	if !ok || got != "c" {
		t.Fatalf("search returned %q, %v; want c", got, ok)
	}
	if !slices.Equal(visited, []string{"b", "c"}) {
		t.Fatalf("visited %v, want [b c]: a has no room, d comes after the accepted item", visited)
	}
	if _, ok := ix.Search(Query{Need: Vec{5, 0, 0, 0}}, func(string) bool { return true }); ok {
		t.Fatal("a need above every claim's room found a claim")
	}
}
