// Package fleet is the managed fleet as read from a cluster: the
// NodeClaims, their Nodes and NodePools, the pods on each node, and what
// each node costs an hour.
package fleet

import (
	"context"
	"fmt"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	resourcehelper "k8s.io/component-helpers/resource"
	nodeutil "k8s.io/kubernetes/pkg/util/node"

	"github.com/fleet-scheduler/fleet-scheduler/cmd/kubectl-fleet/internal/cluster"
	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/drain"
	"github.com/fleet-scheduler/fleet-scheduler/provision/pricing"
)

// Fleet is the managed nodes at one moment.
type Fleet struct {
	Claims []*karpv1.NodeClaim
	Nodes  map[string]*v1.Node
	Pools  map[string]*karpv1.NodePool
	// Pods are the active pods bound to each node, by node name.
	Pods   map[string][]*v1.Pod
	Prices pricing.Provider
}

// Member is one claim with its node (nil before it registers) and pods.
type Member struct {
	Claim *karpv1.NodeClaim
	Node  *v1.Node
	Pods  []*v1.Pod
}

// Load reads the fleet, priced as Prices prices it.
func Load(ctx context.Context, c *cluster.Clients, region string) (*Fleet, error) {
	prices, _ := Prices(ctx, region)
	if prices == nil {
		return nil, fmt.Errorf("the embedded price table cannot be read")
	}
	return LoadWithPrices(ctx, c, prices)
}

// LoadWithPrices reads the fleet, pricing it with prices.
func LoadWithPrices(ctx context.Context, c *cluster.Clients, prices pricing.Provider) (*Fleet, error) {
	f := &Fleet{Nodes: map[string]*v1.Node{}, Pools: map[string]*karpv1.NodePool{}, Pods: map[string][]*v1.Pod{}, Prices: prices}
	claims, err := c.Karp.KarpenterV1().NodeClaims().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing NodeClaims: %w (are fleet-scheduler's CRDs installed? kubectl apply -f manifests/crds)", err)
	}
	for i := range claims.Items {
		f.Claims = append(f.Claims, &claims.Items[i])
	}
	pools, err := c.Karp.KarpenterV1().NodePools().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing NodePools: %w", err)
	}
	for i := range pools.Items {
		f.Pools[pools.Items[i].Name] = &pools.Items[i]
	}
	nodes, err := c.Kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing nodes: %w", err)
	}
	for i := range nodes.Items {
		f.Nodes[nodes.Items[i].Name] = &nodes.Items[i]
	}
	pods, err := c.Kube.CoreV1().Pods("").List(ctx, metav1.ListOptions{ResourceVersion: "0"})
	if err != nil {
		return nil, fmt.Errorf("listing pods: %w", err)
	}
	for i := range pods.Items {
		p := &pods.Items[i]
		if p.Spec.NodeName != "" && drain.IsActive(p) {
			f.Pods[p.Spec.NodeName] = append(f.Pods[p.Spec.NodeName], p)
		}
	}
	return f, nil
}

// NodeName is the name of a claim's node: its status's, else the claim's
// own (nodes join under the claim's name).
func NodeName(nc *karpv1.NodeClaim) string {
	if nc.Status.NodeName != "" {
		return nc.Status.NodeName
	}
	return nc.Name
}

// ClaimOf finds the claim by its name or its node's.
func (f *Fleet) ClaimOf(name string) *karpv1.NodeClaim {
	for _, nc := range f.Claims {
		if nc.Name == name || nc.Status.NodeName == name {
			return nc
		}
	}
	if n := f.Nodes[name]; n != nil && n.Spec.ProviderID != "" {
		for _, nc := range f.Claims {
			if nc.Status.ProviderID == n.Spec.ProviderID {
				return nc
			}
		}
	}
	return nil
}

// Pool is the NodePool of that name, or nil.
func (f *Fleet) Pool(name string) *karpv1.NodePool { return f.Pools[name] }

// Member is the claim with its node and pods.
func (f *Fleet) Member(nc *karpv1.NodeClaim) Member {
	name := NodeName(nc)
	return Member{Claim: nc, Node: f.Nodes[name], Pods: f.Pods[name]}
}

// Initialized are the pool's initialized claims, with nodes and pods.
func (f *Fleet) Initialized(pool string) []Member {
	var out []Member
	for _, nc := range f.Claims {
		if nc.Labels[karpv1.NodePoolLabelKey] == pool && karpv1.IsConditionTrue(nc.Status.Conditions, karpv1.ConditionTypeInitialized) {
			out = append(out, f.Member(nc))
		}
	}
	return out
}

// BudgetCounts are the pool's initialized nodes and, of them, those that
// use up a disruption (being deleted, not Ready, no node, or tainted
// disrupted), as the scale-down loop counts them against its budgets.
func (f *Fleet) BudgetCounts(pool string) (total, disrupting int) {
	for _, m := range f.Initialized(pool) {
		total++
		if m.Claim.DeletionTimestamp != nil || m.Node == nil || m.Node.DeletionTimestamp != nil || !nodeutil.IsNodeReady(m.Node) || drain.HasDisruptedTaint(m.Node) {
			disrupting++
		}
	}
	return total, disrupting
}

// Price is what the claim's node costs an hour: its launched instance
// type, zone and capacity type priced by f.Prices; false when not known
// (not launched yet, or no price).
func (f *Fleet) Price(nc *karpv1.NodeClaim) (float64, bool) {
	it := nc.Labels[v1.LabelInstanceTypeStable]
	if it == "" {
		return 0, false
	}
	if nc.Labels[karpv1.CapacityTypeLabelKey] == "spot" {
		return f.Prices.SpotPrice(it, nc.Labels[v1.LabelTopologyZone])
	}
	return f.Prices.OnDemandPrice(it)
}

// FormatPrice prints a price per hour, or "?" when unknown.
func FormatPrice(p float64, ok bool) string {
	if !ok {
		return "$?"
	}
	return "$" + FormatDollars(p)
}

// Requests sums the pods' requests as the scheduler counts them.
func Requests(pods []*v1.Pod) v1.ResourceList {
	total := v1.ResourceList{}
	for _, p := range pods {
		for name, q := range resourcehelper.PodRequests(p, resourcehelper.PodResourcesOptions{}) {
			sum := total[name]
			sum.Add(q)
			total[name] = sum
		}
	}
	return total
}
