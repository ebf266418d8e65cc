package provisioner

import (
	"context"
	"fmt"
	"unsafe"

	v1 "k8s.io/api/core/v1"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
	fwk "k8s.io/kube-scheduler/framework"
	"k8s.io/kubernetes/pkg/scheduler/framework"

	"github.com/fleet-scheduler/fleet-scheduler/plugins/provisioner/index"
	"github.com/fleet-scheduler/fleet-scheduler/provision/packing"
)

// decision is the placement of one pod, worked out in one PostFilter call:
// what the pod needs of a claim, as the index asks it and as the exact
// checks and the Filter plugins judge it.
type decision struct {
	p     *Provisioner
	ctx   context.Context
	state fwk.CycleState
	pod   *v1.Pod
	info  *framework.PodInfo
	need  *framework.Resource
	pools []*packing.Pool

	shape       string
	filterTerms []fwk.AffinityTerm

	required []*rule
	prefs    []*preference
	relaxed  int // preferences relaxed so far, in order
	// volumes are the node selectors the pod's volumes add (a bound PV's
	// node affinity, a WaitForFirstConsumer class's allowed topologies).
	volumes []*nodeaffinity.NodeSelector

	// Derived from the rules in force, by prepare.
	rules    []*rule
	exclude  []*group // claims full of these are ruled out
	include  []*group // claims must hold a pod of these
	domains  []*domainChoice
	nodeSels []*nodeaffinity.NodeSelector // preferred node affinity in force
	query    index.Query
	// unsatisfiable says why no claim can meet the rules in force.
	unsatisfiable string
	// admitted caches admit's answer per options slice.
	admitted map[optionsKey][]*packing.PoolOption
}

// optionsKey names an options slice by its backing array and length:
// claims and pools share option slices, and a narrowed slice is a new one.
type optionsKey struct {
	data *(*packing.PoolOption)
	n    int
}

func (p *Provisioner) newDecision(ctx context.Context, state fwk.CycleState, pod *v1.Pod, pools []*packing.Pool) (*decision, error) {
	info, err := framework.NewPodInfo(pod)
	if err != nil {
		return nil, err
	}
	d := &decision{p: p, ctx: ctx, state: state, pod: pod, info: info, need: packing.PodRequests(pod), pools: pools}
	if d.required, d.prefs, err = podRules(info); err != nil {
		return nil, err
	}
	d.shape = shapeKey(pod, d.need)
	// The pods the Filter plugins count through PreFilter state for this
	// pod: those its required terms and DoNotSchedule spreads select.
	d.filterTerms = append(append(d.filterTerms, info.RequiredAffinityTerms...), info.RequiredAntiAffinityTerms...)
	for _, r := range d.required {
		if r.kind == spread {
			d.filterTerms = append(d.filterTerms, r.term)
		}
	}
	return d, nil
}

// relax drops the next preference; false when none is left.
func (d *decision) relax() (string, bool) {
	if d.relaxed >= len(d.prefs) {
		return "", false
	}
	d.relaxed++
	return d.prefs[d.relaxed-1].what, true
}

// prepare derives what the rules in force ask of a claim: groups for
// hostname rules, domain choices for the others, and the index query.
func (d *decision) prepare() {
	st := d.p.state
	d.rules = append(d.rules[:0], d.required...)
	d.nodeSels = d.nodeSels[:0]
	for _, pref := range d.prefs[d.relaxed:] {
		if pref.rule != nil {
			d.rules = append(d.rules, pref.rule)
		} else {
			d.nodeSels = append(d.nodeSels, pref.node)
		}
	}
	// A pod some claim's anti-affinity term selects keeps off that claim,
	// or out of its domain.
	for _, owner := range st.groups.owners {
		if owner.selects(st.groups, d.pod.Namespace, d.pod.Labels) {
			d.rules = append(d.rules, &rule{kind: avoidOwners, term: owner.term, owner: owner})
		}
	}
	d.exclude, d.include, d.domains, d.unsatisfiable = d.exclude[:0], d.include[:0], d.domains[:0], ""
	d.admitted = map[optionsKey][]*packing.PoolOption{}
	byKey := map[string][]*rule{}
	for _, r := range d.rules {
		if r.hostname() {
			d.hostRule(r)
		} else {
			byKey[r.term.TopologyKey] = append(byKey[r.term.TopologyKey], r)
		}
	}
	for key, rules := range byKey {
		choice, why := d.chooseDomains(key, rules)
		if why != "" {
			d.unsatisfiable = why
		}
		d.domains = append(d.domains, choice)
	}
	d.query = d.indexQuery()
}

// hostRule turns a hostname-scoped rule into groups: every claim is a
// hostname domain of its own, so these are counts on one claim.
func (d *decision) hostRule(r *rule) {
	st := d.p.state
	switch r.kind {
	case antiAffinity:
		d.exclude = append(d.exclude, st.groups.selecting(r.term, 1, st.eachClaim))
	case avoidOwners:
		d.exclude = append(d.exclude, r.owner)
	case spread:
		// A new claim is always an empty domain, so the smallest count is 0:
		// a claim may hold maxSkew of the selected pods, one more when the
		// pod itself is not one of them.
		limit := max(1, r.maxSkew)
		if !r.selfMatch {
			limit++
		}
		d.exclude = append(d.exclude, st.groups.selecting(r.term, limit, st.eachClaim))
	case affinity:
		g := st.groups.selecting(r.term, 0, st.eachClaim)
		switch {
		case g.total > 0:
			d.include = append(d.include, g)
		case d.p.existingMatches(&r.term) > 0:
			d.unsatisfiable = fmt.Sprintf("the pods its required pod affinity on %s selects run on existing nodes, not on a node that could be launched", r.term.TopologyKey)
		case !r.selfMatch:
			d.unsatisfiable = fmt.Sprintf("no pod matches its required pod affinity on %s", r.term.TopologyKey)
		}
	}
}

func (d *decision) indexQuery() index.Query {
	st := d.p.state
	q := index.Query{Need: vec(d.need)}
	for _, g := range d.exclude {
		q.NotFull |= g.bit
	}
	for _, g := range d.include {
		q.Has |= g.bit
	}
	for _, pool := range d.pools {
		if tolerates(d.pod, pool.Taints) {
			q.Pools |= st.poolBit(pool.Name)
		}
	}
	for _, c := range d.domains {
		if c.allowed == nil {
			continue
		}
		if k, ok := indexKeys[c.key]; ok {
			for v := range c.allowed {
				q.Domains[k] |= st.domainBit(k, v)
			}
		}
	}
	return q
}

// admit keeps the options of a claim or pool the pod may run on: its node
// selector and required node affinity, the preferred node affinity still
// in force, and its volumes' topology.
func (d *decision) admit(options []*packing.PoolOption) []*packing.PoolOption {
	if len(options) == 0 {
		return nil
	}
	key := optionsKey{unsafe.SliceData(options), len(options)}
	if a, ok := d.admitted[key]; ok {
		return a
	}
	out := packing.AdmittingPod(options, d.pod)
	if len(d.nodeSels) > 0 || len(d.volumes) > 0 {
		kept := make([]*packing.PoolOption, 0, len(out))
		for _, o := range out {
			if matchesAll(d.nodeSels, o.Node) && matchesAll(d.volumes, o.Node) {
				kept = append(kept, o)
			}
		}
		out = kept
	}
	d.admitted[key] = out
	return out
}

func matchesAll(sels []*nodeaffinity.NodeSelector, node *v1.Node) bool {
	for _, s := range sels {
		if !s.Match(node) {
			return false
		}
	}
	return true
}

func vec(r *framework.Resource) index.Vec {
	return index.Vec{index.CPU: r.MilliCPU, index.Memory: r.Memory, index.Pods: int64(r.AllowedPodNumber), index.EphemeralStorage: r.EphemeralStorage}
}
