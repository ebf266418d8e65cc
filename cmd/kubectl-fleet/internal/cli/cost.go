package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/fleet-scheduler/fleet-scheduler/cmd/kubectl-fleet/internal/cost"
	"github.com/fleet-scheduler/fleet-scheduler/cmd/kubectl-fleet/internal/fleet"
)

type costOptions struct {
	*options
	output   string
	watch    bool
	interval time.Duration
	region   string
}

const costExample = `  # What the managed nodes cost an hour, by NodePool, instance type, zone and capacity type
  kubectl fleet cost

  # One row per node too, refreshed every 10s
  kubectl fleet cost -o wide --watch

  # The total, for a script
  kubectl fleet cost -o json | jq .pricePerHour`

func newCostCommand(o *options) *cobra.Command {
	c := &costOptions{options: o}
	cmd := &cobra.Command{
		Use:   "cost [--watch]",
		Short: "Show what the managed nodes cost an hour, and how much of them the pods use",
		Long: `cost prices every NodeClaim fleet-scheduler manages (not being deleted): on-demand nodes from the
embedded on-demand price table, spot nodes from EC2's spot price history when AWS answers (AWS_REGION
or --region set), else estimated at the on-demand price less 60%. It groups them by NodePool,
instance type, zone and capacity type, with the share of the nodes' allocatable CPU and memory the
pods' requests use. --watch prints it again every --interval.

Exit codes: 0 done; 1 error; 2 wrong flags.`,
		Example: costExample,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.run(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.StringVarP(&c.output, "output", "o", "table", "output format: table, wide (a row per node too), json or yaml")
	f.BoolVarP(&c.watch, "watch", "w", false, "print again every --interval until interrupted")
	f.DurationVar(&c.interval, "interval", 10*time.Second, "how often --watch refreshes")
	f.StringVar(&c.region, "region", "", "AWS region to read spot prices from (default: AWS_REGION)")
	return cmd
}

func (c *costOptions) run(ctx context.Context) error {
	switch c.output {
	case "table", "wide", "json", "yaml":
	default:
		return usageError("--output %q: use table, wide, json or yaml", c.output)
	}
	if c.interval < time.Second {
		return usageError("--interval %s: at least 1s", c.interval)
	}
	clients, _, err := c.clients()
	if err != nil {
		return err
	}
	prices, source := fleet.Prices(ctx, c.region)
	for {
		f, err := fleet.LoadWithPrices(ctx, clients, prices)
		if err != nil {
			return err
		}
		if err := c.print(cost.Compute(f), source); err != nil {
			return err
		}
		if !c.watch {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(c.interval):
		}
		if c.output == "table" || c.output == "wide" {
			fmt.Fprintf(c.streams.Out, "\n%s\n", time.Now().Format(time.RFC3339))
		}
	}
}

func (c *costOptions) print(r *cost.Report, source string) error {
	out := c.streams.Out
	if structured, err := printStructured(out, c.output, r); structured {
		return err
	}
	if len(r.Nodes) == 0 {
		fmt.Fprintln(out, "No managed node (no NodeClaim).")
		return nil
	}
	if err := r.PrintTable(out, c.output == "wide"); err != nil {
		return err
	}
	fmt.Fprintf(out, "Prices: %s.\n", source)
	return nil
}
