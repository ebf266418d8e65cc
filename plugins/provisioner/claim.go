package provisioner

import (
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"k8s.io/kubernetes/pkg/scheduler/framework"

	"github.com/fleet-scheduler/fleet-scheduler/plugins/provisioner/index"
	"github.com/fleet-scheduler/fleet-scheduler/provision/packing"
)

// claim is a node-to-be that pods are nominated to. While planned it lives
// only here and narrows as pods pack onto it; once its NodeClaim object is
// created it is frozen: pods may still join it, but only if every option
// it may launch as still holds them.
type claim struct {
	name    string
	pool    *packing.Pool
	options []*packing.PoolOption // cheapest first
	max     *framework.Resource   // MaxAllocatable(options)
	min     *framework.Resource   // MinAllocatable(options): what a frozen claim surely has
	planned bool
	opened  time.Time
	// version changes whenever pods join or leave or the options narrow,
	// so a verdict on the claim can be remembered until it changes.
	version uint64

	// used is what the node must hold: the pool's daemons and the pods.
	used *framework.Resource
	pods map[types.UID]*member
	// node is the node-to-be as the Filter plugins see it, kept warm:
	// daemons and pods are added once, not on every decision.
	node *framework.NodeInfo
	// special are the pods whose presence Filter plugins learn through
	// PreFilter state (required anti-affinity terms, volumes): every
	// decision on the claim adds them to the cycle's state.
	special []*member
	// byLabel lists the pods by "key=value" of their labels, so the pods a
	// selector may match are found without looking at every pod.
	byLabel map[string][]*member
	// counts are, per group id, the pods of the group on the claim.
	counts []int32
}

// member is a pod nominated to a claim.
type member struct {
	info     *framework.PodInfo
	requests *framework.Resource
	added    time.Time
	// stamp marks the member as already added to a decision's state.
	stamp uint64
	// ownerGroups are the ids of the groups of the member's own required
	// anti-affinity terms.
	ownerGroups []int
	// moved is set when the pod was moved to this claim to make room for
	// another: the Filter plugins judge it here on its next cycle.
	moved bool
}

func (m *member) pod() *v1.Pod { return m.info.Pod }

func newClaim(name string, pool *packing.Pool, options []*packing.PoolOption, planned bool, opened time.Time) *claim {
	c := &claim{name: name, pool: pool, planned: planned, opened: opened,
		used: packing.Sum(pool.DaemonRequests), pods: map[types.UID]*member{}, byLabel: map[string][]*member{},
		node: framework.NewNodeInfo(pool.Daemons...)}
	c.narrow(options)
	return c
}

func (c *claim) narrow(options []*packing.PoolOption) {
	c.options = options
	c.max = packing.MaxAllocatable(options)
	c.min = packing.MinAllocatable(options)
	c.version++
}

// add puts m on the claim; the caller counts it in the groups.
func (c *claim) add(m *member) {
	c.pods[m.info.Pod.UID] = m
	packing.Add(c.used, m.requests)
	c.node.AddPodInfo(m.info)
	if isSpecial(m.info) {
		c.special = append(c.special, m)
	}
	for k, v := range m.info.Pod.Labels {
		key := k + "=" + v
		c.byLabel[key] = append(c.byLabel[key], m)
	}
	c.version++
}

// remove takes m off the claim; the caller uncounts it from the groups.
func (c *claim) remove(m *member) {
	uid := m.info.Pod.UID
	if c.pods[uid] != m {
		return
	}
	delete(c.pods, uid)
	sub(c.used, m.requests)
	if err := c.node.RemovePod(klog.Background(), m.info.Pod); err != nil {
		klog.Background().Error(err, "Removing pod from claim node", "claim", c.name)
	}
	c.special = without(c.special, m)
	for k, v := range m.info.Pod.Labels {
		key := k + "=" + v
		if rest := without(c.byLabel[key], m); len(rest) > 0 {
			c.byLabel[key] = rest
		} else {
			delete(c.byLabel, key)
		}
	}
	c.version++
}

// isSpecial reports whether Filter plugins learn of the pod through the
// PreFilter state rather than the node: its required anti-affinity is
// counted for other pods, its volumes for ReadWriteOncePod conflicts.
func isSpecial(pi *framework.PodInfo) bool {
	if len(pi.RequiredAntiAffinityTerms) > 0 {
		return true
	}
	for _, v := range pi.Pod.Spec.Volumes {
		if v.PersistentVolumeClaim != nil || v.Ephemeral != nil {
			return true
		}
	}
	return false
}

func without(ms []*member, m *member) []*member {
	for i, x := range ms {
		if x == m {
			return append(ms[:i], ms[i+1:]...)
		}
	}
	return ms
}

func sub(total, r *framework.Resource) {
	total.MilliCPU -= r.MilliCPU
	total.Memory -= r.Memory
	total.EphemeralStorage -= r.EphemeralStorage
	total.AllowedPodNumber -= r.AllowedPodNumber
	for name, q := range r.ScalarResources {
		total.AddScalar(name, -q)
	}
}

// count is the claim's number of pods of group id.
func (c *claim) count(id int) int32 {
	if id < len(c.counts) {
		return c.counts[id]
	}
	return 0
}

func (c *claim) addCount(id int, delta int32) {
	for len(c.counts) <= id {
		c.counts = append(c.counts, 0)
	}
	c.counts[id] += delta
}

// room is what a pod may still take: on a planned claim, the room of its
// largest option (it narrows to the options that hold its pods); on a
// created one, the room every option has.
func (c *claim) room() index.Vec {
	have := c.max
	if !c.planned {
		have = c.min
	}
	return index.Vec{
		index.CPU:              max(0, have.MilliCPU-c.used.MilliCPU),
		index.Memory:           max(0, have.Memory-c.used.Memory),
		index.Pods:             max(0, int64(have.AllowedPodNumber-c.used.AllowedPodNumber)),
		index.EphemeralStorage: max(0, have.EphemeralStorage-c.used.EphemeralStorage),
	}
}

// values lists the distinct values of a node label across the options.
func values(options []*packing.PoolOption, key string) []string {
	var out []string
	for _, o := range options {
		v, ok := o.Node.Labels[key]
		if !ok {
			continue
		}
		seen := false
		for _, x := range out {
			if x == v {
				seen = true
				break
			}
		}
		if !seen {
			out = append(out, v)
		}
	}
	return out
}

// pinnedValue is the one value of key every option has, if there is one.
func pinnedValue(options []*packing.PoolOption, key string) (string, bool) {
	if len(options) == 0 {
		return "", false
	}
	v, ok := options[0].Node.Labels[key]
	if !ok {
		return "", false
	}
	for _, o := range options[1:] {
		if o.Node.Labels[key] != v {
			return "", false
		}
	}
	return v, true
}
