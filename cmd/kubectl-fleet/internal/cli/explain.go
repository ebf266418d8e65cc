package cli

import (
	"context"
	"time"

	"github.com/spf13/cobra"

	"github.com/fleet-scheduler/fleet-scheduler/cmd/kubectl-fleet/internal/cluster"
	"github.com/fleet-scheduler/fleet-scheduler/cmd/kubectl-fleet/internal/explain"
)

const explainExample = `  # Why is this pod pending: its claim (phase, age, last launch error) or each NodePool's reason
  kubectl fleet explain pod scan-worker-7d9f8-abcde -n scan

  # Why is this node (not) being consolidated: budget, do-not-disrupt, PDBs, Balanced's figures
  kubectl fleet explain node default-x2k4j`

func newExplainCommand(o *options) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "explain (pod NAME | node NAME)",
		Short: "Say why a pod is pending, or why a node is or is not being consolidated",
		Long: `explain pod: for a pending pod, the NodeClaim it is nominated to (its phase, age and last
launch error), or why no NodePool admitted it, in the words of the FailedProvisioning event,
with the NodePool limits in the way.

explain node: for a node fleet-scheduler manages, its NodeClaim and NodePool, what holds it back
from consolidation (do-not-disrupt, pods on their way, PodDisruptionBudgets), the disruption
budget, under Balanced whether removing it is worth it (the figures), and the scale-down loop's
last events on it.

Exit codes: 0 explained; 1 error (no such pod or node, no access); 2 wrong arguments.`,
		Example: explainExample,
	}
	cmd.AddCommand(o.explainCommand("pod", "Say why a pod is pending",
		"  kubectl fleet explain pod scan-worker-7d9f8-abcde -n scan",
		func(ctx context.Context, clients *cluster.Clients, ns, name string) error {
			return explain.Pod(ctx, clients, ns, name, time.Now(), o.streams.Out)
		}))
	cmd.AddCommand(o.explainCommand("node", "Say why a node is or is not being consolidated",
		"  kubectl fleet explain node default-x2k4j",
		func(ctx context.Context, clients *cluster.Clients, _, name string) error {
			return explain.Node(ctx, clients, name, time.Now(), o.streams.Out)
		}))
	return cmd
}

// explainCommand is `kubectl fleet explain KIND NAME`: it connects to the
// cluster and runs explainFn on NAME in the selected namespace.
func (o *options) explainCommand(kind, short, example string,
	explainFn func(ctx context.Context, clients *cluster.Clients, ns, name string) error) *cobra.Command {
	return &cobra.Command{
		Use:     kind + " NAME",
		Short:   short,
		Example: example,
		Args:    exactlyOne(kind),
		RunE: func(cmd *cobra.Command, args []string) error {
			clients, ns, err := o.clients()
			if err != nil {
				return err
			}
			return explainFn(cmd.Context(), clients, ns, args[0])
		},
	}
}

func exactlyOne(what string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != 1 {
			return usageError("name one %s: kubectl fleet explain %s NAME", what, what)
		}
		return nil
	}
}

// clients connects to the cluster kubectl's flags name, with the
// namespace they select.
func (o *options) clients() (*cluster.Clients, string, error) {
	cfg, err := o.config.ToRESTConfig()
	if err != nil {
		return nil, "", errNoCluster(err)
	}
	ns, _, err := o.config.ToRawKubeConfigLoader().Namespace()
	if err != nil {
		return nil, "", errNoCluster(err)
	}
	c, err := cluster.NewClients(cfg)
	return c, ns, err
}
