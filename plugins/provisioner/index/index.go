// Package index keeps the open claims in the order pods try them and finds,
// without running any Filter plugin, the ones that can still take a pod:
// room left by resource, topology domains (zones, capacity types) still
// possible, NodePool, and groups of pods the claim must or must not hold.
//
// It is a segment tree over the claims in the order they were opened. Every
// inner node keeps, for its subtree, the most room left in each resource
// and the union of what its claims allow, so a search skips whole runs of
// claims that are full or pinned elsewhere and the cost of finding a claim
// does not grow with the number of claims open. What the tree keeps are
// necessary conditions only: a claim it yields may still turn out not to
// fit (the room of its largest option may not be the room of one option in
// every resource at once); the caller checks exactly and the scheduler's
// Filter plugins have the last word.
package index

// Resources are the dimensions the tree prunes on.
const (
	CPU = iota // millicores
	Memory
	Pods
	EphemeralStorage
	numResources
)

// Vec is an amount of each resource the tree prunes on.
type Vec [numResources]int64

// Keys are the topology keys whose domains the tree tracks as bit masks.
const (
	Zone = iota
	CapacityType
	numKeys
)

// Entry is what the tree knows of one claim.
type Entry struct {
	// Free is the room left on the claim's largest option, per resource.
	Free Vec
	// Domains are, per key, the bits of the values the claim may still take.
	Domains [numKeys]uint64
	// Pool is the bit of the claim's NodePool.
	Pool uint64
	// Has are the bits of the groups the claim holds at least one pod of;
	// Full those it holds as many of as it may.
	Has, Full uint64
}

// Query is what a pod asks of a claim. A zero mask asks nothing.
type Query struct {
	Need    Vec
	Domains [numKeys]uint64 // the claim must allow one of these values, per key
	Pools   uint64          // the claim must be of one of these pools
	Has     uint64          // the claim must hold a pod of each of these groups
	NotFull uint64          // the claim must have room in each of these groups
}

// node aggregates a subtree: the most of each resource free, and the
// union of the masks (Full as its complement, so that "some claim has room
// in every asked group" can be ruled out).
type node struct {
	free    Vec
	domains [numKeys]uint64
	pools   uint64
	has     uint64
	notFull uint64
}

// empty is a node that rules out every query asking anything.
var empty = node{free: Vec{-1, -1, -1, -1}}

func (n *node) merge(a, b *node) {
	for i := range n.free {
		n.free[i] = max(a.free[i], b.free[i])
	}
	for k := range n.domains {
		n.domains[k] = a.domains[k] | b.domains[k]
	}
	n.pools = a.pools | b.pools
	n.has = a.has | b.has
	n.notFull = a.notFull | b.notFull
}

func leaf(e Entry) node {
	return node{free: e.Free, domains: e.Domains, pools: e.Pool, has: e.Has, notFull: ^e.Full}
}

// admits reports whether some claim under n may answer q.
func (n *node) admits(q *Query) bool {
	for i, need := range q.Need {
		if n.free[i] < need {
			return false
		}
	}
	for k, want := range q.Domains {
		if want != 0 && n.domains[k]&want == 0 {
			return false
		}
	}
	if q.Pools != 0 && n.pools&q.Pools == 0 {
		return false
	}
	return n.has&q.Has == q.Has && n.notFull&q.NotFull == q.NotFull
}

// Index holds items (claims) in slot order.
type Index[T comparable] struct {
	items []T
	live  []bool
	slot  map[T]int
	tree  []node // tree[1] is the root; leaves start at len(tree)/2
	count int    // live items
}

// New makes an empty index.
func New[T comparable]() *Index[T] {
	return &Index[T]{slot: map[T]int{}, tree: make([]node, 2)}
}

// Len is the number of items held.
func (ix *Index[T]) Len() int { return ix.count }

// Add puts item after every item held, described by e.
func (ix *Index[T]) Add(item T, e Entry) {
	if _, ok := ix.slot[item]; ok {
		ix.Set(item, e)
		return
	}
	if len(ix.items) == ix.leaves() {
		ix.grow()
	}
	s := len(ix.items)
	ix.items = append(ix.items, item)
	ix.live = append(ix.live, true)
	ix.slot[item] = s
	ix.count++
	ix.put(s, leaf(e))
}

// Set describes item anew.
func (ix *Index[T]) Set(item T, e Entry) {
	if s, ok := ix.slot[item]; ok {
		ix.put(s, leaf(e))
	}
}

// Remove drops item.
func (ix *Index[T]) Remove(item T) {
	s, ok := ix.slot[item]
	if !ok {
		return
	}
	delete(ix.slot, item)
	var zero T
	ix.items[s], ix.live[s] = zero, false
	ix.count--
	ix.put(s, empty)
	// Keep the tree dense: dead slots cost search time only where their
	// neighbours are alive, but they cost memory for ever.
	if dead := len(ix.items) - ix.count; dead > 64 && dead > ix.count {
		ix.compact()
	}
}

// Search visits, in slot order, the items whose entry may answer q, until
// visit returns true. It returns the item visit accepted.
func (ix *Index[T]) Search(q Query, visit func(T) bool) (T, bool) {
	var zero T
	if ix.count == 0 {
		return zero, false
	}
	return ix.search(1, &q, visit)
}

func (ix *Index[T]) search(i int, q *Query, visit func(T) bool) (T, bool) {
	var zero T
	if !ix.tree[i].admits(q) {
		return zero, false
	}
	if leaves := ix.leaves(); i >= leaves {
		s := i - leaves
		if s < len(ix.items) && ix.live[s] && visit(ix.items[s]) {
			return ix.items[s], true
		}
		return zero, false
	}
	if item, ok := ix.search(2*i, q, visit); ok {
		return item, true
	}
	return ix.search(2*i+1, q, visit)
}

// All visits every item in slot order.
func (ix *Index[T]) All(visit func(T)) {
	for s, item := range ix.items {
		if ix.live[s] {
			visit(item)
		}
	}
}

func (ix *Index[T]) leaves() int { return len(ix.tree) / 2 }

func (ix *Index[T]) put(s int, n node) {
	i := ix.leaves() + s
	ix.tree[i] = n
	for i /= 2; i >= 1; i /= 2 {
		ix.tree[i].merge(&ix.tree[2*i], &ix.tree[2*i+1])
	}
}

// grow doubles the leaves, keeping every item in its slot.
func (ix *Index[T]) grow() {
	old, oldLeaves := ix.tree, ix.leaves()
	ix.tree = make([]node, 4*oldLeaves)
	leaves := ix.leaves()
	for i := range leaves {
		ix.tree[leaves+i] = empty
	}
	copy(ix.tree[leaves:], old[oldLeaves:])
	ix.rebuild()
}

// compact drops dead slots, keeping the live items in order.
func (ix *Index[T]) compact() {
	leaves := ix.leaves()
	items, live := ix.items[:0], ix.live[:0]
	kept := make([]node, 0, ix.count)
	for s, item := range ix.items {
		if !ix.live[s] {
			continue
		}
		ix.slot[item] = len(items)
		items = append(items, item)
		live = append(live, true)
		kept = append(kept, ix.tree[leaves+s])
	}
	var zero T
	for s := len(items); s < len(ix.items); s++ {
		ix.items[s] = zero
	}
	ix.items, ix.live = items, live
	for i := range leaves {
		ix.tree[leaves+i] = empty
	}
	copy(ix.tree[leaves:], kept)
	ix.rebuild()
}

func (ix *Index[T]) rebuild() {
	for i := ix.leaves() - 1; i >= 1; i-- {
		ix.tree[i].merge(&ix.tree[2*i], &ix.tree[2*i+1])
	}
}
