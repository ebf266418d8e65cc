// Command kubectl-fleet is the kubectl plugin of fleet-scheduler
// (`kubectl fleet plan|explain|cost`): installed on PATH as kubectl-fleet,
// kubectl runs it as `kubectl fleet`.
package main

import (
	"os"

	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/fleet-scheduler/fleet-scheduler/cmd/kubectl-fleet/internal/cli"
)

func main() {
	os.Exit(cli.Run(os.Args[1:], genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr}))
}
