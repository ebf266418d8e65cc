// Command scheduler is kube-scheduler, upstream flags and all, with the
// Provisioner plugin compiled in.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-scheduler/app"

	// Registers ProvisionerArgs so --config decodes, defaults and converts it.
	_ "github.com/fleet-scheduler/fleet-scheduler/plugins/apis/config/scheme"
	"github.com/fleet-scheduler/fleet-scheduler/plugins/provisioner"
)

func main() {
	command := app.NewSchedulerCommand(app.WithPlugin(provisioner.Name, provisioner.New))
	os.Exit(cli.Run(command))
}
