// Command scheduler is kube-scheduler, upstream flags and all, with the
// Provisioner plugin compiled in.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"k8s.io/component-base/cli"
	componentbaseconfig "k8s.io/component-base/config"
	// leader_election_master_status{name} on /metrics: 1 on the replica
	// that holds the named Lease (kube-scheduler's, the provisioning one).
	_ "k8s.io/component-base/metrics/prometheus/clientgo/leaderelection"
	"k8s.io/kubernetes/cmd/kube-scheduler/app"

	"github.com/fleet-scheduler/fleet-scheduler/cmd/internal/version"
	// Registers ProvisionerArgs so --config decodes, defaults and converts it.
	_ "github.com/fleet-scheduler/fleet-scheduler/plugins/apis/config/scheme"
	"github.com/fleet-scheduler/fleet-scheduler/plugins/provisioner"
)

func main() {
	// Filled in from --config and the flags before kube-scheduler builds
	// the plugin, so the provisioning controllers elect their leader as
	// the scheduler does.
	le := defaultLeaderElection()
	command := app.NewSchedulerCommand(app.WithPlugin(provisioner.Name, provisioner.NewWithLeaderElection(&le)))
	command.Use = "fleet-scheduler"
	printVersion(command)
	resolveLeaderElection(command, &le)
	os.Exit(cli.Run(command))
}

// resolveLeaderElection reads the scheduler's leaderElection into le just
// before kube-scheduler runs. A config that cannot be read is left for
// kube-scheduler to report; le keeps the defaults (elected) meanwhile.
func resolveLeaderElection(command *cobra.Command, le *componentbaseconfig.LeaderElectionConfiguration) {
	upstream := command.RunE
	command.RunE = func(cmd *cobra.Command, args []string) error {
		if resolved, err := leaderElection(cmd.Flags()); err == nil {
			*le = resolved
		}
		return upstream(cmd, args)
	}
}

// printVersion makes --version (and --version=raw) print fleet-scheduler's
// version and the Kubernetes version it is built on, where kube-scheduler
// would print only the latter. It runs before kube-scheduler's own check,
// which stays in place for --version=vX.Y.Z (overriding the reported
// Kubernetes version and running on).
func printVersion(command *cobra.Command) {
	upstream := command.PersistentPreRunE
	command.PersistentPreRunE = func(cmd *cobra.Command, args []string) error {
		if f := cmd.Flags().Lookup("version"); f != nil && f.Changed {
			switch f.Value.String() {
			case "true":
				fmt.Fprintln(cmd.OutOrStdout(), version.Get())
				os.Exit(0)
			case "raw":
				fmt.Fprintln(cmd.OutOrStdout(), version.Get().JSON())
				os.Exit(0)
			}
		}
		if upstream != nil {
			return upstream(cmd, args)
		}
		return nil
	}
}
