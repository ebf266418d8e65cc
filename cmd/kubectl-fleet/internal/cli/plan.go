package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/resource"

	"github.com/fleet-scheduler/fleet-scheduler/cmd/kubectl-fleet/internal/cluster"
	"github.com/fleet-scheduler/fleet-scheduler/cmd/kubectl-fleet/internal/planner"
	"github.com/fleet-scheduler/fleet-scheduler/cmd/kubectl-fleet/internal/workload"
	"github.com/fleet-scheduler/fleet-scheduler/provision/catalog"
)

type planOptions struct {
	*options
	files        resource.FilenameOptions
	nodePools    []string
	offline      bool
	emptyCluster bool
	output       string
	region       string
	overhead     float64
	timeout      time.Duration
}

const planExample = `  # What scaling scan-worker to 20 replicas would launch, against the current cluster
  kubectl get deployment scan-worker -n scan -o yaml | sed 's/replicas: 3$/replicas: 20/' | kubectl fleet plan -f -

  # A directory of manifests, with the cluster's nodes ignored (a fresh cluster)
  kubectl fleet plan -f deploy/ --empty-cluster

  # No cluster and no AWS: the embedded catalogue and prices, NodePools from files
  kubectl fleet plan --offline --nodepools manifests/examples -f app.yaml -o json

  # Only the price, for a script
  kubectl fleet plan -f app.yaml -o json | jq .pricePerHour`

func newPlanCommand(o *options) *cobra.Command {
	p := &planOptions{options: o}
	cmd := &cobra.Command{
		Use:   "plan -f FILENAME [--nodepools PATH] [--offline] [--empty-cluster]",
		Short: "Show the NodeClaims a workload would launch, and their price, before applying it",
		Long: `Plan runs the scheduler's own decision - the default profile's Filter and Score plugins,
then fleet-scheduler's Provisioner - for the pods the workloads in the files would create
(Deployments, StatefulSets, Jobs, ReplicaSets and Pods, DaemonSets as per-node overhead),
without creating anything. It prints the NodeClaims it would open (NodePool, instance types
cheapest first, zone, capacity type, pods, $/hour) and the pods it could not place, with
each NodePool's reason in the words of the FailedProvisioning event.

Existing nodes and their pods come from the cluster unless --empty-cluster; a workload that
exists already adds only the pods it lacks. NodePools and EC2NodeClasses come from the cluster
unless --nodepools names files or directories holding them. --offline needs no cluster and no
AWS: the embedded us-east-1 instance catalogue and on-demand price table.

Exit codes: 0 every pod has a place; 3 some pods have none (the plan is printed);
1 error; 2 wrong flags.`,
		Example: planExample,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return p.run(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.StringSliceVarP(&p.files.Filenames, "filename", "f", nil, "files or directories with the workloads to plan (- for standard input)")
	f.BoolVarP(&p.files.Recursive, "recursive", "R", false, "read directories given with -f and --nodepools recursively")
	f.StringSliceVar(&p.nodePools, "nodepools", nil, "files or directories with the NodePools and EC2NodeClasses to plan with (default: the cluster's)")
	f.BoolVar(&p.offline, "offline", false, "no cluster and no AWS: the embedded catalogue and price table (needs --nodepools)")
	f.BoolVar(&p.emptyCluster, "empty-cluster", false, "plan as if the cluster had no node, pod or NodeClaim yet")
	f.StringVarP(&p.output, "output", "o", "table", "output format: table, json or yaml")
	f.StringVar(&p.region, "region", "", "AWS region of the instance catalogue (default: the AWS SDK's, e.g. AWS_REGION)")
	f.Float64Var(&p.overhead, "vm-memory-overhead-percent", catalog.DefaultVMMemoryOverheadPercent, "memory the hypervisor keeps, as the Provisioner args' vmMemoryOverheadPercent")
	f.DurationVar(&p.timeout, "timeout", 5*time.Minute, "give up after this long")
	return cmd
}

func (p *planOptions) validate() error {
	switch p.output {
	case "table", "json", "yaml":
	default:
		return usageError("--output %q: use table, json or yaml", p.output)
	}
	if len(p.files.Filenames) == 0 {
		return usageError("give the workloads to plan with -f FILE (a file, a directory, or - for standard input)")
	}
	if p.overhead < 0 || p.overhead >= 1 {
		return usageError("--vm-memory-overhead-percent %v: must be in [0, 1)", p.overhead)
	}
	return nil
}

func (p *planOptions) run(ctx context.Context) error {
	if err := p.validate(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	namespace := "default"
	var snap *cluster.Snapshot
	if !p.offline {
		ns, _, err := p.config.ToRawKubeConfigLoader().Namespace()
		if err != nil {
			return fmt.Errorf("reading the kubeconfig: %w", err)
		}
		namespace = ns
		cfg, err := p.config.ToRESTConfig()
		if err != nil {
			return fmt.Errorf("%w, or plan with --offline --nodepools PATH", errNoCluster(err))
		}
		clients, err := cluster.NewClients(cfg)
		if err != nil {
			return err
		}
		if snap, err = cluster.Load(ctx, clients); err != nil {
			return err
		}
	} else if p.config.Namespace != nil && *p.config.Namespace != "" {
		namespace = *p.config.Namespace
	}
	set, err := workload.Read(&p.files, namespace)
	if err != nil {
		return fmt.Errorf("reading -f: %w", err)
	}
	if len(p.nodePools) > 0 {
		pools, err := workload.Read(&resource.FilenameOptions{Filenames: p.nodePools, Recursive: p.files.Recursive}, namespace)
		if err != nil {
			return fmt.Errorf("reading --nodepools: %w", err)
		}
		if len(pools.NodePools) == 0 {
			return fmt.Errorf("--nodepools %v holds no karpenter.sh/v1 NodePool", p.nodePools)
		}
		set.Merge(pools)
	}
	if p.offline && len(set.NodePools) == 0 {
		return fmt.Errorf("--offline reads no cluster: give the NodePools and EC2NodeClasses to plan with, --nodepools PATH")
	}
	if len(set.Workloads) == 0 {
		return fmt.Errorf("-f %v holds no Deployment, StatefulSet, Job, ReplicaSet, DaemonSet or Pod to plan", p.files.Filenames)
	}
	cat, err := planner.LoadCatalog(ctx, planner.CatalogOptions{Offline: p.offline, Region: p.region, VMMemoryOverheadPercent: p.overhead})
	if err != nil {
		return err
	}
	plan, err := planner.Make(ctx, planner.Input{Set: set, Snapshot: snap, EmptyCluster: p.emptyCluster || p.offline, Catalog: cat})
	if err != nil {
		return err
	}
	if err := p.print(plan); err != nil {
		return err
	}
	if len(plan.Unplaced) > 0 {
		return errUnplaced
	}
	return nil
}

func (p *planOptions) print(plan *planner.Plan) error {
	out := p.streams.Out
	if structured, err := printStructured(out, p.output, plan); structured {
		return err
	}
	return plan.PrintTable(out)
}
