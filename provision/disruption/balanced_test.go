package disruption

import (
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/packing"
)

func TestPodCost(t *testing.T) {
	for _, tc := range []struct {
		name string
		pod  v1.Pod
		want float64
	}{
		{"default", v1.Pod{}, 1},
		{"priority 2^25", v1.Pod{Spec: v1.PodSpec{Priority: ptr.To[int32](1 << 25)}}, 2},
		{"system-critical is clamped", v1.Pod{Spec: v1.PodSpec{Priority: ptr.To[int32](2000001000)}}, 10},
		{"deletion cost -2^27", v1.Pod{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{podDeletionCostAnnotation: "-134217728"}}}, 0},
		{"unparsable deletion cost is ignored", v1.Pod{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{podDeletionCostAnnotation: "high"}}}, 1},
	} {
		if got := podCost(&tc.pod); got != tc.want {
			t.Errorf("%s: podCost = %v, want %v", tc.name, got, tc.want)
		}
	}
}

type staticPools []*packing.Pool

func (s staticPools) Pools() []*packing.Pool { return s }

// TestBalancedVerdict: a pool of three nodes at $1/h; the candidate has 2
// pods, the others 4 each: disruption costs 3, 5 and 5 (a node counts 1).
func TestBalancedVerdict(t *testing.T) {
	now := time.Now()
	np := &karpv1.NodePool{ObjectMeta: metav1.ObjectMeta{Name: "p"}}
	np.Spec.Disruption.ConsolidationPolicy = karpv1.ConsolidationPolicyBalanced
	labels := map[string]string{v1.LabelInstanceTypeStable: "m5.large", v1.LabelTopologyZone: "z", karpv1.CapacityTypeLabelKey: "on-demand"}
	pool := &packing.Pool{Name: "p", Options: packing.NewPoolOptions([]*packing.Option{{InstanceType: "m5.large", Zone: "z", CapacityType: "on-demand", Price: 1,
		Labels: labels}}, nil, nil)}
	node := func(pods int, created time.Time) *candidate {
		k := &candidate{pool: np, initialized: true, node: &v1.Node{},
			claim: &karpv1.NodeClaim{ObjectMeta: metav1.ObjectMeta{Labels: labels, CreationTimestamp: metav1.NewTime(created)}}}
		for range pods {
			k.movable = append(k.movable, &v1.Pod{})
		}
		return k
	}
	cand := node(2, now)
	l := &loop{c: &Controller{pools: staticPools{pool}}, now: now, cands: []*candidate{cand, node(4, now), node(4, now)}}

	// Removing it saves 1/3 of the cost for 3/13 of the disruption: 1.44.
	if why := l.balancedVerdict(cand, 1); why != "" {
		t.Errorf("removal refused: %s", why)
	}
	// A replacement at $0.80 saves 0.2/3 for 3/13: 0.29, under 1/2.
	if why := l.balancedVerdict(cand, 0.2); !strings.Contains(why, "score 0.29, below 0.50") {
		t.Errorf("verdict = %q", why)
	}
	// With k=3 the bar is 1/3: still under.
	np.Spec.Disruption.ConsolidationThreshold = ptr.To[int32](3)
	if why := l.balancedVerdict(cand, 0.2); !strings.Contains(why, "below 0.33") {
		t.Errorf("verdict at k=3 = %q", why)
	}
	// Half way through expireAfter the pods weigh half: the candidate costs
	// 1+2*0.5 = 2 of 2+5+5 = 12, and the same replacement scores 0.40.
	np.Spec.Disruption.ConsolidationThreshold = ptr.To[int32](2)
	half := node(2, now.Add(-time.Hour))
	half.claim.Spec.ExpireAfter = karpv1.MustParseNillableDuration("2h")
	l = &loop{c: &Controller{pools: staticPools{pool}}, now: now, cands: []*candidate{half, node(4, now), node(4, now)}}
	if why := l.balancedVerdict(half, 0.2); !strings.Contains(why, "score 0.40") {
		t.Errorf("verdict half way = %q", why)
	}
	// Without a price for every node there is no judging.
	l = &loop{c: &Controller{pools: staticPools{}}, now: now, cands: []*candidate{cand}}
	if why := l.balancedVerdict(cand, 1); !strings.Contains(why, "price") {
		t.Errorf("verdict without prices = %q", why)
	}
}
