package planner

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"k8s.io/cli-runtime/pkg/printers"

	"github.com/fleet-scheduler/fleet-scheduler/cmd/kubectl-fleet/internal/fleet"
)

// maxTypesShown bounds the instance types a table row lists.
const maxTypesShown = 3

// PrintTable writes the plan as kubectl prints tables.
func (p *Plan) PrintTable(out io.Writer) error {
	w := printers.GetNewTabWriter(out)
	if len(p.NodeClaims) == 0 {
		fmt.Fprintln(w, "No new NodeClaim.")
	} else {
		fmt.Fprintln(w, "NODECLAIM\tNODEPOOL\tINSTANCE TYPES (CHEAPEST FIRST)\tZONE\tCAPACITY\tPODS\t$/HOUR")
		pods := 0
		for _, c := range p.NodeClaims {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", c.Name, c.NodePool, typesCell(c.InstanceTypes),
				oneOrCount(c.Zone, c.Zones, "zones"), strings.Join(c.CapacityTypes, ", "), len(c.Pods), fleet.FormatDollars(c.PricePerHour))
			pods += len(c.Pods)
		}
		fmt.Fprintf(w, "TOTAL\t%d claims\t\t\t\t%d\t%s\n", len(p.NodeClaims), pods, fleet.FormatDollars(p.PricePerHour))
	}
	if err := w.Flush(); err != nil {
		return err
	}
	for _, c := range p.InFlight {
		fmt.Fprintf(out, "%d pod(s) join NodeClaim %s (nodepool %s), already launching as %s.\n", len(c.Pods), c.Name, c.NodePool, typesCell(c.InstanceTypes))
	}
	if len(p.ExistingNodes) > 0 {
		var parts []string
		n := 0
		for _, e := range p.ExistingNodes {
			what := fmt.Sprintf("%s (%d)", e.Node, len(e.Pods))
			if e.Preempting {
				what += " by preempting lower-priority pods"
			}
			parts = append(parts, what)
			n += len(e.Pods)
		}
		fmt.Fprintf(out, "%d pod(s) fit existing nodes: %s.\n", n, strings.Join(parts, ", "))
	}
	if len(p.Unplaced) > 0 {
		fmt.Fprintf(out, "\n%d pod(s) cannot be placed:\n", len(p.Unplaced))
		for _, u := range p.Unplaced {
			fmt.Fprintf(out, "  %s", u.Pod)
			if u.From != "" {
				fmt.Fprintf(out, " (%s)", u.From)
			}
			fmt.Fprintln(out, ":")
			if len(u.NodePools) == 0 {
				fmt.Fprintf(out, "    %s\n", u.Reason)
			}
			pools := make([]string, 0, len(u.NodePools))
			for name := range u.NodePools {
				pools = append(pools, name)
			}
			sort.Strings(pools)
			for _, name := range pools {
				fmt.Fprintf(out, "    nodepool %q: %s\n", name, u.NodePools[name])
			}
		}
	}
	fmt.Fprintf(out, "\n%d pod(s) planned. Catalogue: %s.\n", p.Pods, p.Catalog)
	for _, n := range p.Notes {
		fmt.Fprintf(out, "Note: %s.\n", n)
	}
	return nil
}

func typesCell(types []string) string {
	if len(types) <= maxTypesShown {
		return strings.Join(types, ", ")
	}
	return fmt.Sprintf("%s +%d", strings.Join(types[:maxTypesShown], ", "), len(types)-maxTypesShown)
}

func oneOrCount(one string, all []string, what string) string {
	if one != "" {
		return one
	}
	return fmt.Sprintf("any of %d %s", len(all), what)
}
