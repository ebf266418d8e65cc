package provisioner

import (
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	fwk "k8s.io/kube-scheduler/framework"
)

// A group is a set of pods that pending pods' constraints count on claims:
//   - a selector group holds the pods a term selects (a required pod
//     affinity or anti-affinity term, or a topology spread constraint's
//     selector in the pod's namespace);
//   - an owner group holds the pods that carry one required anti-affinity
//     term, so that a pod the term selects keeps off their claims (the
//     term binds both ways).
//
// Claims count their pods per group; groups with a bit in the index let a
// search skip claims that are full of a group, or hold none of it.
type group struct {
	id   int
	bit  uint64 // 0 when the index has no bit left for it
	key  string
	term fwk.AffinityTerm
	// owner: the group holds the pods carrying term, not those it selects.
	owner bool
	// limit is how many of the group's pods a claim may hold before it is
	// full (maxSkew for a hostname spread, 1 for anti-affinity); 0 = no limit.
	limit int32
	// total counts the group's pods over every claim.
	total int32
	// byDomain counts the group's pods per value of a topology key, over
	// the claims whose options all have that value (pinned claims).
	byDomain map[string]map[string]int32
}

// groups is the registry of every group the claims count.
type groups struct {
	byKey  map[string]*group
	all    []*group
	owners []*group // owner groups, for pods their terms may select
	bits   int
	// nsLabels gives a namespace's labels for terms with a namespace selector.
	nsLabels func(namespace string) labels.Set
}

func newGroups(nsLabels func(string) labels.Set) *groups {
	if nsLabels == nil {
		nsLabels = func(string) labels.Set { return nil }
	}
	return &groups{byKey: map[string]*group{}, nsLabels: nsLabels}
}

// termKey names a term: the namespaces, namespace selector and selector it
// matches pods by.
func termKey(t *fwk.AffinityTerm) string {
	ns := ""
	if t.Namespaces != nil {
		names := t.Namespaces.UnsortedList()
		slices.Sort(names)
		ns = strings.Join(names, ",")
	}
	nsSel := ""
	if t.NamespaceSelector != nil {
		nsSel = t.NamespaceSelector.String()
	}
	return ns + "|" + nsSel + "|" + t.Selector.String()
}

// selecting returns the group of pods term selects, limited per claim,
// registering it (and counting it on every claim) the first time.
func (g *groups) selecting(t fwk.AffinityTerm, limit int32, claims func(func(*claim))) *group {
	key := fmt.Sprintf("sel|%d|%s", limit, termKey(&t))
	if gr, ok := g.byKey[key]; ok {
		return gr
	}
	gr := g.register(key, t, false, limit)
	claims(func(c *claim) {
		for _, m := range c.candidates(&t) {
			if gr.matches(g, m) {
				g.count(gr, c, 1)
			}
		}
	})
	return gr
}

// owning returns the group of pods carrying term t, registering it the
// first time a pod with it joins a claim.
func (g *groups) owning(t fwk.AffinityTerm) *group {
	key := "own|" + t.TopologyKey + "|" + termKey(&t)
	if gr, ok := g.byKey[key]; ok {
		return gr
	}
	gr := g.register(key, t, true, 1)
	g.owners = append(g.owners, gr)
	return gr
}

func (g *groups) register(key string, t fwk.AffinityTerm, owner bool, limit int32) *group {
	gr := &group{id: len(g.all), key: key, term: t, owner: owner, limit: limit, byDomain: map[string]map[string]int32{}}
	if g.bits < 64 {
		gr.bit = 1 << g.bits
		g.bits++
	}
	g.byKey[key] = gr
	g.all = append(g.all, gr)
	return gr
}

// matches reports whether the member belongs to a selector group.
func (gr *group) matches(g *groups, m *member) bool {
	if gr.owner {
		return slices.Contains(m.ownerGroups, gr.id)
	}
	return gr.selects(g, m.pod().Namespace, m.pod().Labels)
}

// selects reports whether the group's term selects a pod with these labels.
func (gr *group) selects(g *groups, namespace string, podLabels map[string]string) bool {
	t := &gr.term
	if !t.Namespaces.Has(namespace) && (t.NamespaceSelector == nil || !t.NamespaceSelector.Matches(g.nsLabels(namespace))) {
		return false
	}
	return t.Selector.Matches(labels.Set(podLabels))
}

// joined counts a member that joined c in every group it belongs to.
func (g *groups) joined(c *claim, m *member) {
	m.ownerGroups = m.ownerGroups[:0]
	for _, t := range m.info.RequiredAntiAffinityTerms {
		m.ownerGroups = append(m.ownerGroups, g.owning(t).id)
	}
	for _, gr := range g.all {
		if gr.matches(g, m) {
			g.count(gr, c, 1)
		}
	}
}

// left uncounts a member that left c.
func (g *groups) left(c *claim, m *member) {
	for _, gr := range g.all {
		if gr.matches(g, m) {
			g.count(gr, c, -1)
		}
	}
}

func (g *groups) count(gr *group, c *claim, delta int32) {
	c.addCount(gr.id, delta)
	gr.total += delta
	for key, byValue := range gr.byDomain {
		if v, ok := pinnedValue(c.options, key); ok {
			byValue[v] += delta
		}
	}
}

// narrowed recounts a claim's pods by domain after its options narrowed:
// before, they counted in no domain of the keys that are now pinned.
func (g *groups) narrowed(c *claim, before map[string]string) {
	for _, gr := range g.all {
		n := c.count(gr.id)
		if n == 0 {
			continue
		}
		for key, byValue := range gr.byDomain {
			old, wasPinned := before[key]
			now, isPinned := pinnedValue(c.options, key)
			if wasPinned == isPinned && old == now {
				continue
			}
			if wasPinned {
				byValue[old] -= n
			}
			if isPinned {
				byValue[now] += n
			}
		}
	}
}

// domainCounts returns the group's pods per value of key over the claims,
// starting to count by key the first time it is asked.
func (g *groups) domainCounts(gr *group, key string, claims func(func(*claim))) map[string]int32 {
	if byValue, ok := gr.byDomain[key]; ok {
		return byValue
	}
	byValue := map[string]int32{}
	claims(func(c *claim) {
		if n := c.count(gr.id); n > 0 {
			if v, ok := pinnedValue(c.options, key); ok {
				byValue[v] += n
			}
		}
	})
	gr.byDomain[key] = byValue
	return byValue
}

// entryBits are a claim's Has and Full masks for the index.
func (g *groups) entryBits(c *claim) (has, full uint64) {
	for id, n := range c.counts {
		gr := g.all[id]
		if gr.bit == 0 || n <= 0 {
			continue
		}
		has |= gr.bit
		if gr.limit > 0 && n >= gr.limit {
			full |= gr.bit
		}
	}
	return has, full
}

// candidates are the members of c that t may select: for a selector with
// a matchLabels pair, only the pods carrying that pair. A superset of the
// pods t selects; callers match each.
func (c *claim) candidates(t *fwk.AffinityTerm) []*member {
	if reqs, ok := t.Selector.Requirements(); ok {
		for _, r := range reqs {
			if op := r.Operator(); op == selection.Equals || op == selection.DoubleEquals || (op == selection.In && r.Values().Len() == 1) {
				return c.byLabel[r.Key()+"="+r.Values().UnsortedList()[0]]
			}
		}
	}
	out := make([]*member, 0, len(c.pods))
	for _, m := range c.pods {
		out = append(out, m)
	}
	return out
}
