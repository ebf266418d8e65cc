package planner

import (
	"context"
	"fmt"
	"math"
	"slices"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/fleet-scheduler/fleet-scheduler/cmd/kubectl-fleet/internal/cluster"
	"github.com/fleet-scheduler/fleet-scheduler/cmd/kubectl-fleet/internal/fleet"
	"github.com/fleet-scheduler/fleet-scheduler/cmd/kubectl-fleet/internal/workload"
	"github.com/fleet-scheduler/fleet-scheduler/plugins/provisioner"
	ec2v1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/ec2/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1alpha1"
)

// Plan is what applying the workloads would launch. Its JSON form is the
// interface scripts read: nodeClaims, unplaced and pricePerHour.
type Plan struct {
	// NodeClaims are the claims the scheduler would open, in order.
	NodeClaims []Claim `json:"nodeClaims"`
	// Unplaced are the pods nothing would place.
	Unplaced []Unplaced `json:"unplaced"`
	// PricePerHour is the new claims' hourly price, in USD.
	PricePerHour float64 `json:"pricePerHour"`
	// InFlight are NodeClaims already launching that planned pods join.
	InFlight []Claim `json:"inFlightNodeClaims,omitempty"`
	// ExistingNodes are the existing nodes planned pods go to.
	ExistingNodes []NodePods `json:"existingNodes,omitempty"`
	// Pods counts the planned pods.
	Pods int `json:"pods"`
	// Catalog says where instance types and prices came from.
	Catalog string `json:"catalog"`
	// Notes say what the plan assumed.
	Notes []string `json:"notes,omitempty"`
}

// Claim is one NodeClaim of a plan.
type Claim struct {
	Name     string `json:"name"`
	NodePool string `json:"nodePool"`
	// InstanceTypes are the types the claim may launch as, cheapest first.
	InstanceTypes []string `json:"instanceTypes"`
	// Zone and CapacityType are set when the claim is pinned to one.
	Zone         string   `json:"zone,omitempty"`
	Zones        []string `json:"zones"`
	CapacityType string   `json:"capacityType,omitempty"`
	// CapacityTypes are those the claim may launch as, cheapest first
	// (spot, then on-demand as its fallback).
	CapacityTypes []string `json:"capacityTypes"`
	Pods          []string `json:"pods"`
	// PricePerHour is the cheapest option's, what a launch pays.
	PricePerHour float64 `json:"pricePerHour"`
	// Requests are what the node must hold: its pods and the DaemonSet
	// pods every node of the pool runs.
	Requests v1.ResourceList `json:"requests"`
}

// Unplaced is a pod no node and no claim takes.
type Unplaced struct {
	Pod  string `json:"pod"`
	From string `json:"from,omitempty"`
	// Reason is the FailedProvisioning event's words; NodePools splits it
	// by NodePool.
	Reason    string            `json:"reason"`
	NodePools map[string]string `json:"nodePools,omitempty"`
	// Scheduling is the FailedScheduling event's words: why no existing
	// node takes the pod.
	Scheduling string `json:"scheduling,omitempty"`
}

// NodePods are planned pods on one existing node.
type NodePods struct {
	Node       string   `json:"node"`
	Pods       []string `json:"pods"`
	Preempting bool     `json:"preempting,omitempty"`
}

// Input is what a plan is made of.
type Input struct {
	// Set is what the files hold (workloads, and NodePools and
	// EC2NodeClasses to plan with).
	Set *workload.Set
	// Snapshot is the cluster; nil offline.
	Snapshot *cluster.Snapshot
	// EmptyCluster plans as if the cluster had no node and no NodeClaim.
	EmptyCluster bool
	Catalog      *Catalog
}

// Make expands the workloads and runs the scheduler's decision for their
// pods.
func Make(ctx context.Context, in Input) (*Plan, error) {
	snap := in.Snapshot
	if snap == nil {
		snap = &cluster.Snapshot{}
	}
	if in.EmptyCluster {
		empty := *snap
		empty.Nodes, empty.Pods, empty.NodeClaims = nil, nil, nil
		snap = &empty
	}
	exp, err := workload.Expand(in.Set, snap)
	if err != nil {
		return nil, err
	}
	pools, notes, err := poolInputs(in.Set, snap, exp, in.Catalog.Zones)
	if err != nil {
		return nil, err
	}
	objects := snap.SchedulerObjects(func(p *v1.Pod) bool { return !exp.Replaced[p.UID] })
	objects = append(objects, in.Set.Cluster...)
	for _, c := range exp.Claims {
		objects = append(objects, c)
	}
	sim := &provisioner.Simulation{Pools: NewSource(pools, in.Catalog.ClassOptions), Cluster: dedupe(objects)}
	res, err := sim.Run(ctx, exp.Pods)
	if err != nil {
		return nil, err
	}
	plan := build(res, exp.Pods)
	plan.Catalog = in.Catalog.Source
	plan.Notes = append(append(notes, exp.Notes...), plan.Notes...)
	if s := in.Set.IgnoredSummary(); s != "" {
		plan.Notes = append(plan.Notes, "not planned (not a workload): "+s)
	}
	return plan, nil
}

// poolInputs are the cluster's NodePools, classes and overlays, or the
// files' when they hold any; DaemonSets from both, a file's replacing the
// cluster's of the same name.
func poolInputs(set *workload.Set, snap *cluster.Snapshot, exp *workload.Expansion, zones []string) (PoolInputs, []string, error) {
	in := PoolInputs{NodePools: snap.NodePools, NodeClasses: snap.NodeClasses, NodeOverlays: snap.NodeOverlays, NodeClaims: snap.NodeClaims}
	var notes []string
	if len(set.NodePools) > 0 {
		in.NodePools = set.NodePools
		var resolved []*ec2v1.EC2NodeClass
		resolved, notes = resolveClasses(set.NodeClasses, snap.NodeClasses, zones)
		in.NodeClasses = resolved
	} else if len(set.NodeClasses) > 0 {
		return in, nil, fmt.Errorf("the files hold EC2NodeClasses but no NodePool: add the NodePools that use them (--nodepools)")
	}
	if len(in.NodePools) == 0 {
		return in, nil, fmt.Errorf("no NodePool to plan with: the cluster has none; give NodePool and EC2NodeClass files with --nodepools")
	}
	if len(set.NodeOverlays) > 0 {
		in.NodeOverlays = append(append([]*v1alpha1.NodeOverlay{}, in.NodeOverlays...), set.NodeOverlays...)
	}
	replaced := map[string]bool{}
	for _, ds := range exp.DaemonSets {
		replaced[ds.Namespace+"/"+ds.Name] = true
	}
	for _, ds := range snap.DaemonSets {
		if !replaced[ds.Namespace+"/"+ds.Name] {
			in.DaemonSets = append(in.DaemonSets, ds)
		}
	}
	in.DaemonSets = append(in.DaemonSets, exp.DaemonSets...)
	return in, notes, nil
}

// build turns the simulation's result into the plan's terms.
func build(res *provisioner.SimulationResult, planned []*v1.Pod) *Plan {
	plan := &Plan{NodeClaims: []Claim{}, Unplaced: []Unplaced{}, Pods: len(planned)}
	mine := map[string]bool{}
	for _, p := range planned {
		mine[key(p)] = true
	}
	for _, c := range res.Claims {
		ours := false
		for _, p := range c.Pods {
			ours = ours || mine[key(p)]
		}
		if !ours {
			continue
		}
		if c.InFlight {
			// Only the planned pods: the others are on their way already.
			plan.InFlight = append(plan.InFlight, claimOf(c, mine))
			continue
		}
		claim := claimOf(c, nil)
		plan.NodeClaims = append(plan.NodeClaims, claim)
		plan.PricePerHour += claim.PricePerHour
	}
	plan.PricePerHour = math.Round(plan.PricePerHour*1e6) / 1e6
	byNode := map[string]*NodePods{}
	var nodes []string
	for _, p := range res.OnNodes {
		np := byNode[p.Node]
		if np == nil {
			np = &NodePods{Node: p.Node, Preempting: p.Preempting}
			byNode[p.Node] = np
			nodes = append(nodes, p.Node)
		}
		np.Pods = append(np.Pods, key(p.Pod))
	}
	slices.Sort(nodes)
	for _, n := range nodes {
		plan.ExistingNodes = append(plan.ExistingNodes, *byNode[n])
	}
	for _, u := range res.Unplaced {
		out := Unplaced{Pod: key(u.Pod), From: u.Pod.Annotations[workload.OriginAnnotation], Reason: u.Provisioning,
			NodePools: fleet.PoolReasons(u.Provisioning), Scheduling: u.Scheduling}
		if out.Reason == "" {
			out.Reason = u.Scheduling
		}
		plan.Unplaced = append(plan.Unplaced, out)
	}
	return plan
}

// claimOf is c in the plan's terms, listing the pods only names (all
// when nil).
func claimOf(c provisioner.SimulatedClaim, only map[string]bool) Claim {
	claim := Claim{Name: c.Name, NodePool: c.NodePool, Pods: []string{}, Requests: c.Requests.DeepCopy()}
	for _, p := range c.Pods {
		if only == nil || only[key(p)] {
			claim.Pods = append(claim.Pods, key(p))
		}
	}
	for name, q := range claim.Requests {
		if q.IsZero() {
			delete(claim.Requests, name)
		}
	}
	for _, o := range c.Options {
		claim.InstanceTypes = appendNew(claim.InstanceTypes, o.InstanceType)
		claim.Zones = appendNew(claim.Zones, o.Zone)
		claim.CapacityTypes = appendNew(claim.CapacityTypes, o.CapacityType)
	}
	slices.Sort(claim.Zones)
	if len(claim.Zones) == 1 {
		claim.Zone = claim.Zones[0]
	}
	if len(claim.CapacityTypes) == 1 {
		claim.CapacityType = claim.CapacityTypes[0]
	}
	if len(c.Options) > 0 {
		claim.PricePerHour = c.Options[0].Price
	}
	return claim
}

func appendNew(list []string, v string) []string {
	if slices.Contains(list, v) {
		return list
	}
	return append(list, v)
}

func key(p *v1.Pod) string { return p.Namespace + "/" + p.Name }

// dedupe keeps the last object of each kind, namespace and name (a
// file's over the cluster's).
func dedupe(objs []runtime.Object) []runtime.Object {
	type id struct{ kind, ns, name string }
	last := map[id]int{}
	ids := make([]id, len(objs))
	for i, o := range objs {
		m, ok := o.(interface {
			GetNamespace() string
			GetName() string
		})
		if !ok {
			continue
		}
		ids[i] = id{fmt.Sprintf("%T", o), m.GetNamespace(), m.GetName()}
		last[ids[i]] = i
	}
	out := make([]runtime.Object, 0, len(objs))
	for i, o := range objs {
		if last[ids[i]] == i {
			out = append(out, o)
		}
	}
	return out
}
