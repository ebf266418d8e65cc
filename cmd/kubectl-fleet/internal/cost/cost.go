// Package cost sums what the managed nodes cost an hour, by NodePool,
// instance type, zone and capacity type, with the share of their
// allocatable the pods' requests use.
package cost

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/cli-runtime/pkg/printers"

	"github.com/fleet-scheduler/fleet-scheduler/cmd/kubectl-fleet/internal/fleet"
	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
)

// Report is the fleet's cost. Its JSON form: groups, nodes, pricePerHour.
type Report struct {
	Groups []Group `json:"groups"`
	Nodes  []Node  `json:"nodes"`
	// PricePerHour sums the nodes with a known price, USD.
	PricePerHour float64 `json:"pricePerHour"`
	// Unpriced counts nodes whose price is not known (not launched yet,
	// or no price for their type).
	Unpriced int `json:"unpriced,omitempty"`
	// CPUUsed and MemoryUsed are the pods' requests' share of the
	// nodes' allocatable, 0 to 1.
	CPUUsed    float64 `json:"cpuUsed"`
	MemoryUsed float64 `json:"memoryUsed"`
}

// Group is the nodes of one NodePool, instance type, zone and capacity type.
type Group struct {
	NodePool     string  `json:"nodePool"`
	InstanceType string  `json:"instanceType"`
	Zone         string  `json:"zone"`
	CapacityType string  `json:"capacityType"`
	Nodes        int     `json:"nodes"`
	PricePerHour float64 `json:"pricePerHour"`
	Priced       bool    `json:"priced"`
	CPUUsed      float64 `json:"cpuUsed"`
	MemoryUsed   float64 `json:"memoryUsed"`
	// the sums the shares come from
	cpuReq, cpuAlloc, memReq, memAlloc int64
}

// Node is one managed node.
type Node struct {
	Name         string  `json:"name"`
	NodeClaim    string  `json:"nodeClaim"`
	NodePool     string  `json:"nodePool"`
	InstanceType string  `json:"instanceType"`
	Zone         string  `json:"zone"`
	CapacityType string  `json:"capacityType"`
	PricePerHour float64 `json:"pricePerHour"`
	Priced       bool    `json:"priced"`
	Pods         int     `json:"pods"`
	CPUUsed      float64 `json:"cpuUsed"`
	MemoryUsed   float64 `json:"memoryUsed"`
}

// Compute prices every NodeClaim of the fleet that is not being deleted.
func Compute(f *fleet.Fleet) *Report {
	r := &Report{Groups: []Group{}, Nodes: []Node{}}
	groups := map[string]*Group{}
	var cpuReq, cpuAlloc, memReq, memAlloc int64
	for _, nc := range f.Claims {
		if nc.DeletionTimestamp != nil {
			continue
		}
		m := f.Member(nc)
		price, ok := f.Price(nc)
		n := Node{Name: fleet.NodeName(nc), NodeClaim: nc.Name, NodePool: nc.Labels[karpv1.NodePoolLabelKey],
			InstanceType: orUnknown(nc.Labels[v1.LabelInstanceTypeStable]), Zone: orUnknown(nc.Labels[v1.LabelTopologyZone]),
			CapacityType: orUnknown(nc.Labels[karpv1.CapacityTypeLabelKey]), PricePerHour: price, Priced: ok, Pods: len(m.Pods)}
		req := fleet.Requests(m.Pods)
		alloc := nc.Status.Allocatable
		if m.Node != nil {
			alloc = m.Node.Status.Allocatable
		}
		cr, ca, mr, ma := req.Cpu().MilliValue(), alloc.Cpu().MilliValue(), req.Memory().Value(), alloc.Memory().Value()
		n.CPUUsed, n.MemoryUsed = share(cr, ca), share(mr, ma)
		r.Nodes = append(r.Nodes, n)
		key := strings.Join([]string{n.NodePool, n.InstanceType, n.Zone, n.CapacityType}, "/")
		g := groups[key]
		if g == nil {
			g = &Group{NodePool: n.NodePool, InstanceType: n.InstanceType, Zone: n.Zone, CapacityType: n.CapacityType, Priced: true}
			groups[key] = g
		}
		g.Nodes++
		g.PricePerHour += price
		g.Priced = g.Priced && ok
		g.cpuReq, g.cpuAlloc, g.memReq, g.memAlloc = g.cpuReq+cr, g.cpuAlloc+ca, g.memReq+mr, g.memAlloc+ma
		cpuReq, cpuAlloc, memReq, memAlloc = cpuReq+cr, cpuAlloc+ca, memReq+mr, memAlloc+ma
		if ok {
			r.PricePerHour += price
		} else {
			r.Unpriced++
		}
	}
	for _, g := range groups {
		g.CPUUsed, g.MemoryUsed = share(g.cpuReq, g.cpuAlloc), share(g.memReq, g.memAlloc)
		g.PricePerHour = round(g.PricePerHour)
		r.Groups = append(r.Groups, *g)
	}
	slices.SortFunc(r.Groups, func(a, b Group) int {
		return strings.Compare(a.NodePool+"/"+a.InstanceType+"/"+a.Zone+"/"+a.CapacityType, b.NodePool+"/"+b.InstanceType+"/"+b.Zone+"/"+b.CapacityType)
	})
	slices.SortFunc(r.Nodes, func(a, b Node) int { return strings.Compare(a.Name, b.Name) })
	r.PricePerHour = round(r.PricePerHour)
	r.CPUUsed, r.MemoryUsed = share(cpuReq, cpuAlloc), share(memReq, memAlloc)
	return r
}

// PrintTable writes the report as kubectl prints tables; wide adds one
// row per node.
func (r *Report) PrintTable(out io.Writer, wide bool) error {
	w := printers.GetNewTabWriter(out)
	fmt.Fprintln(w, "NODEPOOL\tINSTANCE TYPE\tZONE\tCAPACITY\tNODES\t$/HOUR\tCPU REQUESTED\tMEMORY REQUESTED")
	nodes := 0
	for _, g := range r.Groups {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", g.NodePool, g.InstanceType, g.Zone, g.CapacityType, g.Nodes,
			price(g.PricePerHour, g.Priced), pct(g.CPUUsed), pct(g.MemoryUsed))
		nodes += g.Nodes
	}
	fmt.Fprintf(w, "TOTAL\t\t\t\t%d\t%s\t%s\t%s\n", nodes, price(r.PricePerHour, r.Unpriced == 0), pct(r.CPUUsed), pct(r.MemoryUsed))
	if err := w.Flush(); err != nil {
		return err
	}
	if r.Unpriced > 0 {
		fmt.Fprintf(out, "%d node(s) without a known price (not launched yet, or a type the price table lacks) are left out of the total.\n", r.Unpriced)
	}
	if wide && len(r.Nodes) > 0 {
		fmt.Fprintln(out)
		w = printers.GetNewTabWriter(out)
		fmt.Fprintln(w, "NODE\tNODECLAIM\tINSTANCE TYPE\tZONE\tCAPACITY\tPODS\t$/HOUR\tCPU REQUESTED\tMEMORY REQUESTED")
		for _, n := range r.Nodes {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", n.Name, n.NodeClaim, n.InstanceType, n.Zone, n.CapacityType, n.Pods,
				price(n.PricePerHour, n.Priced), pct(n.CPUUsed), pct(n.MemoryUsed))
		}
		return w.Flush()
	}
	return nil
}

func share(used, of int64) float64 {
	if of <= 0 {
		return 0
	}
	return math.Round(float64(used)/float64(of)*1000) / 1000
}

func round(p float64) float64 { return math.Round(p*1e6) / 1e6 }

func pct(f float64) string { return fmt.Sprintf("%.0f%%", 100*f) }

func price(p float64, known bool) string {
	if !known && p == 0 {
		return "?"
	}
	s := fleet.FormatDollars(p)
	if !known {
		s += "+?"
	}
	return s
}

func orUnknown(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
