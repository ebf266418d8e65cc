package provisioner

import (
	"fmt"
	"slices"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	v1helper "k8s.io/component-helpers/scheduling/corev1"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"

	"github.com/fleet-scheduler/fleet-scheduler/plugins/provisioner/index"
	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/packing"
)

// The scheduler counts only the topology domains of nodes that exist.
// Provisioning must count the ones it can create: for a rule on a key
// other than hostname (a zone, a capacity type, any label the options
// carry), the domains are the values the pod's eligible NodePools offer
// plus those of existing eligible nodes, and the pods counted in each are
// those on existing nodes and on claims pinned to it. The pod's claim is
// then pinned to a domain the rules allow, and the scheduler's own plugins
// agree once the nodes exist.

// indexKeys are the topology keys the index keeps masks for.
var indexKeys = map[string]int{v1.LabelTopologyZone: index.Zone, karpv1.CapacityTypeLabelKey: index.CapacityType}

// domainChoice is what the rules on one key allow a claim.
type domainChoice struct {
	key string
	// allowed values; nil when any is allowed.
	allowed map[string]bool
	// order ranks the values, preferred first (fewest selected pods for a
	// spread), for pinning a claim that still spans several.
	order []string
	// carried limits, per group, how many of the group's pods a claim not
	// yet pinned may bring along into each value when it is pinned: its
	// pods count in no domain until then, and in the chosen one after.
	carried []carried
}

type carried struct {
	group *group
	room  map[string]int32 // per value; a value not in it takes none
}

// pinnable lists, in order, the values c may be pinned to.
func (c *domainChoice) pinnable(cl *claim) []string {
	if cl == nil || len(c.carried) == 0 {
		return c.order
	}
	if _, pinned := pinnedValue(cl.options, c.key); pinned {
		return c.order // its pods count in its domain already
	}
	out := make([]string, 0, len(c.order))
	for _, v := range c.order {
		ok := true
		for _, k := range c.carried {
			if n := cl.count(k.group.id); n > 0 && n > k.room[v] {
				ok = false
				break
			}
		}
		if ok {
			out = append(out, v)
		}
	}
	return out
}

// chooseDomains works out the values of key the pod's rules allow.
func (d *decision) chooseDomains(key string, rules []*rule) (*domainChoice, string) {
	offered := d.offeredDomains(key)
	choice := &domainChoice{key: key}
	var allowed map[string]bool
	counts := map[string]int32{}
	for _, r := range rules {
		ok, carry, why := d.ruleDomains(key, r, offered, counts)
		if why != "" {
			return choice, why
		}
		if carry != nil {
			choice.carried = append(choice.carried, *carry)
		}
		if allowed == nil {
			allowed = ok
			continue
		}
		for v := range allowed {
			if !ok[v] {
				delete(allowed, v)
			}
		}
	}
	if len(allowed) == 0 {
		return choice, fmt.Sprintf("its pod affinity, anti-affinity and topology spread on %s leave no domain the NodePools offer", key)
	}
	choice.allowed = allowed
	for v := range allowed {
		choice.order = append(choice.order, v)
	}
	if len(choice.order) > 1 && !spreads(rules) {
		// Nothing ranks the domains (the first pod of a group with pod
		// affinity, say): prefer the one holding the fewest pods on claims,
		// so that free choices do not pile into the first domain by name.
		counts = d.p.state.podsByDomain(key)
	}
	slices.SortFunc(choice.order, func(a, b string) int {
		if counts[a] != counts[b] {
			return int(counts[a] - counts[b])
		}
		return cmpString(a, b)
	})
	return choice, ""
}

func spreads(rules []*rule) bool {
	for _, r := range rules {
		if r.kind == spread {
			return true
		}
	}
	return false
}

// podsByDomain counts the pods on claims pinned to each value of key.
func (p *state) podsByDomain(key string) map[string]int32 {
	out := map[string]int32{}
	p.eachClaim(func(c *claim) {
		if v, ok := pinnedValue(c.options, key); ok {
			out[v] += int32(len(c.pods))
		}
	})
	return out
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// ruleDomains are the values of key one rule allows, and how many of the
// rule's pods a claim not yet pinned may carry into each; counts gathers,
// for ranking, the selected pods per value of the spread rules.
func (d *decision) ruleDomains(key string, r *rule, offered map[string]bool, counts map[string]int32) (map[string]bool, *carried, string) {
	st := d.p.state
	g := r.owner
	if r.kind != avoidOwners {
		g = st.groups.selecting(r.term, 0, st.eachClaim)
	}
	onClaims := st.groups.domainCounts(g, key, st.eachClaim)
	existing, nodeDomains := d.p.existingCounts(d.pod, r, key)
	domains := map[string]bool{}
	for v := range offered {
		domains[v] = true
	}
	for v := range nodeDomains {
		domains[v] = true
	}
	count := func(v string) int32 { return existing[v] + onClaims[v] }
	out := map[string]bool{}
	switch r.kind {
	case spread:
		min := int32(-1)
		for v := range domains {
			if n := count(v); min < 0 || n < min {
				min = n
			}
		}
		if int32(len(domains)) < r.minDomains || min < 0 {
			min = 0
		}
		self := int32(0)
		if r.selfMatch {
			self = 1
		}
		carry := &carried{group: g, room: map[string]int32{}}
		for v := range offered {
			if room := r.maxSkew - (count(v) + self - min); room >= 0 {
				out[v] = true
				carry.room[v] = room
			}
			counts[v] += count(v)
		}
		return out, carry, ""
	case affinity:
		for v := range domains {
			if count(v) > 0 && offered[v] {
				out[v] = true
			}
		}
		if len(out) == 0 {
			anywhere := false
			for v := range domains {
				anywhere = anywhere || count(v) > 0
			}
			if anywhere || !r.selfMatch {
				return nil, nil, fmt.Sprintf("the pods its required pod affinity on %s selects are in no domain the NodePools offer", key)
			}
			// The first of its group: it may go anywhere, and the rest
			// follow it. Start the group in the domain with the fewest pods
			// on claims, so groups do not all pile into one.
			load := st.podsByDomain(key)
			best := ""
			for v := range offered {
				if best == "" || load[v] < load[best] || load[v] == load[best] && v < best {
					best = v
				}
			}
			out[best] = true
		}
	case antiAffinity, avoidOwners:
		for v := range offered {
			if count(v) == 0 {
				out[v] = true
			}
		}
		// Pods of the group on a claim not yet pinned would land in the
		// pod's domain, whichever it is.
		return out, &carried{group: g, room: map[string]int32{}}, ""
	}
	return out, nil, ""
}

// offeredDomains are the values of key on the options of the NodePools
// that may take the pod.
func (d *decision) offeredDomains(key string) map[string]bool {
	out := map[string]bool{}
	for _, pool := range d.pools {
		if pool.Unavailable != "" || pool.Static || !tolerates(d.pod, pool.Taints) {
			continue
		}
		for _, v := range values(d.admit(pool.Options), key) {
			out[v] = true
		}
	}
	return out
}

// existingCounts counts, per value of key, the pods the rule's term
// selects on existing nodes, and lists the values of the nodes that count
// as domains (for a spread, those its node inclusion policies admit).
func (p *Provisioner) existingCounts(pod *v1.Pod, r *rule, key string) (map[string]int32, map[string]bool) {
	lister := p.handle.SnapshotSharedLister()
	if lister == nil {
		return nil, nil
	}
	nodes, err := lister.NodeInfos().List()
	if err != nil {
		return nil, nil
	}
	honorAffinity := r.kind == spread && !r.ignoreAffine
	// The answer depends on the pod only through its node affinity and
	// tolerations (spreads), so pods without either share it until the
	// snapshot changes: a burst of spread pods counts the cluster once.
	cacheable := !(r.kind == spread && r.honorTaints) && (!honorAffinity || !hasNodeConstraints(pod))
	key2 := fmt.Sprintf("%d|%s|%s|%s|%v", r.kind, r.term.TopologyKey, termKey(&r.term), key, honorAffinity)
	if cacheable {
		if e, ok := p.state.existing.get(nodes, key2); ok {
			return e.counts, e.domains
		}
	}
	counts, domains := map[string]int32{}, map[string]bool{}
	var required nodeaffinity.RequiredNodeAffinity
	if honorAffinity {
		required = nodeaffinity.GetRequiredNodeAffinity(pod)
	}
	if cacheable {
		defer p.state.existing.put(key2, counts, domains)
	}
	for _, ni := range nodes {
		node := ni.Node()
		v, ok := node.Labels[key]
		if !ok {
			continue
		}
		if honorAffinity {
			if match, _ := required.Match(node); !match {
				continue
			}
		}
		if r.kind == spread && r.honorTaints && !tolerates(pod, node.Spec.Taints) {
			continue
		}
		domains[v] = true
		for _, pi := range ni.GetPods() {
			if termSelects(r, pi, p.state.groups) {
				counts[v]++
			}
		}
	}
	return counts, domains
}

func hasNodeConstraints(pod *v1.Pod) bool {
	return len(pod.Spec.NodeSelector) > 0 || pod.Spec.Affinity != nil && pod.Spec.Affinity.NodeAffinity != nil &&
		pod.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution != nil
}

// existingCache keeps existingCounts' answers for one snapshot of the
// cluster, told apart from the next by the nodes' generations.
type existingCache struct {
	fingerprint [2]int64
	entries     map[string]existingEntry
}

type existingEntry struct {
	counts  map[string]int32
	domains map[string]bool
}

func (c *existingCache) get(nodes []fwk.NodeInfo, key string) (existingEntry, bool) {
	fp := [2]int64{int64(len(nodes))}
	for _, ni := range nodes {
		fp[1] += ni.GetGeneration()
	}
	if fp != c.fingerprint || c.entries == nil {
		c.fingerprint, c.entries = fp, map[string]existingEntry{}
	}
	e, ok := c.entries[key]
	return e, ok
}

func (c *existingCache) put(key string, counts map[string]int32, domains map[string]bool) {
	c.entries[key] = existingEntry{counts: counts, domains: domains}
}

// existingMatches counts the pods on existing nodes a term selects.
func (p *Provisioner) existingMatches(t *fwk.AffinityTerm) int {
	lister := p.handle.SnapshotSharedLister()
	if lister == nil {
		return 0
	}
	nodes, err := lister.NodeInfos().List()
	if err != nil {
		return 0
	}
	n := 0
	for _, ni := range nodes {
		for _, pi := range ni.GetPods() {
			if t.Matches(pi.GetPod(), p.state.groups.nsLabels(pi.GetPod().Namespace)) {
				n++
			}
		}
	}
	return n
}

func termSelects(r *rule, pi fwk.PodInfo, g *groups) bool {
	pod := pi.GetPod()
	if r.kind == avoidOwners {
		for _, t := range pi.GetRequiredAntiAffinityTerms() {
			if termKey(&t) == termKey(&r.term) && t.TopologyKey == r.term.TopologyKey {
				return true
			}
		}
		return false
	}
	if !r.term.Namespaces.Has(pod.Namespace) && (r.term.NamespaceSelector == nil || !r.term.NamespaceSelector.Matches(g.nsLabels(pod.Namespace))) {
		return false
	}
	return r.term.Selector.Matches(labels.Set(pod.Labels))
}

// pinDomains narrows options to what the domain choices allow, pinning
// each key to its preferred value among those left and those the claim's
// pods (nil for a new claim) may be carried into. It returns nil when no
// option is left.
func (d *decision) pinDomains(cl *claim, options []*packing.PoolOption) []*packing.PoolOption {
	for _, c := range d.domains {
		if c.allowed == nil {
			continue
		}
		if options = pinFirst(options, c.key, c.pinnable(cl)); options == nil {
			return nil
		}
	}
	return options
}

// pinFirst keeps the options with the first value in order that any of
// them has.
func pinFirst(options []*packing.PoolOption, key string, order []string) []*packing.PoolOption {
	for _, v := range order {
		if pinned := packing.PinnedTo(options, key, v); len(pinned) > 0 {
			return pinned
		}
	}
	return nil
}

func tolerates(pod *v1.Pod, taints []v1.Taint) bool {
	_, untol := untolerated(pod, taints)
	return !untol
}

func untolerated(pod *v1.Pod, taints []v1.Taint) (v1.Taint, bool) {
	return v1helper.FindMatchingUntoleratedTaint(klog.Background(), taints, pod.Spec.Tolerations, func(t *v1.Taint) bool {
		return t.Effect == v1.TaintEffectNoSchedule || t.Effect == v1.TaintEffectNoExecute
	}, false)
}
