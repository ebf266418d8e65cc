// Package cli is kubectl fleet's command line: plan, explain and cost,
// with kubectl's connection flags (k8s.io/cli-runtime genericclioptions)
// and exit codes scripts can test.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/klog/v2"

	"github.com/fleet-scheduler/fleet-scheduler/cmd/internal/version"
)

// Exit codes.
const (
	// ExitOK: done; for plan, every pod has a place.
	ExitOK = 0
	// ExitError: the command failed (the message says what to fix).
	ExitError = 1
	// ExitUsage: wrong flags or arguments.
	ExitUsage = 2
	// ExitUnplaced: plan made, but some pods have no place.
	ExitUnplaced = 3
)

// exitError carries an exit code with its message.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func usageError(format string, args ...any) error {
	return &exitError{code: ExitUsage, err: fmt.Errorf(format, args...)}
}

// errUnplaced is returned, after the plan is printed, when pods have no place.
var errUnplaced = &exitError{code: ExitUnplaced}

// options are the flags every command shares.
type options struct {
	config  *genericclioptions.ConfigFlags
	streams genericiooptions.IOStreams
	// keepLogs leaves klog as it is (tests running the commands in a
	// process whose servers log); otherwise klog is silent unless -v.
	keepLogs bool
}

// NewCommand is kubectl-fleet's root command.
func NewCommand(streams genericiooptions.IOStreams) *cobra.Command {
	return newCommand(&options{config: genericclioptions.NewConfigFlags(true), streams: streams})
}

func newCommand(o *options) *cobra.Command {
	root := &cobra.Command{
		Use:   "kubectl-fleet",
		Short: "What fleet-scheduler would launch, why a pod is pending, what the fleet costs",
		Long: `kubectl fleet answers three questions with fleet-scheduler's own decision code:

  plan     what a workload would launch (NodeClaims, instance types, $/hour) before you apply it
  explain  why a pod is pending or a node is (not) consolidated
  cost     what the managed nodes cost now, by NodePool, instance type, zone and capacity type

Exit codes: 0 done; 1 error (the message says what to fix); 2 wrong flags or arguments;
3 (plan) some pods have no place.`,
		Annotations:   map[string]string{cobra.CommandDisplayNameAnnotation: "kubectl fleet"},
		Version:       version.Get().String(),
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRun: func(cmd *cobra.Command, _ []string) {
			if !o.keepLogs {
				quietLogs(cmd)
			}
		},
	}
	root.SetOut(o.streams.Out)
	root.SetErr(o.streams.ErrOut)
	o.config.AddFlags(root.PersistentFlags())
	addLogFlags(root)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &exitError{code: ExitUsage, err: err} })
	root.AddCommand(newPlanCommand(o), newExplainCommand(o), newCostCommand(o))
	root.CompletionOptions.DisableDefaultCmd = true
	return root
}

// Run executes the command line and returns the exit code.
func Run(args []string, streams genericiooptions.IOStreams) int {
	return run(NewCommand(streams), args, streams)
}

func run(cmd *cobra.Command, args []string, streams genericiooptions.IOStreams) int {
	cmd.SetArgs(args)
	err := cmd.Execute()
	if err == nil {
		return ExitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintln(streams.ErrOut, "error:", ee.err)
		}
		return ee.code
	}
	fmt.Fprintln(streams.ErrOut, "error:", err)
	if isUsage(err) {
		return ExitUsage
	}
	return ExitError
}

// isUsage tells cobra's own argument errors (unknown command, wrong
// number of arguments) from failures.
func isUsage(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "accepts ", "requires ", "invalid argument"} {
		if strings.Contains(msg, p) {
			return true
		}
	}
	return false
}

// addLogFlags adds klog's -v: the decision code logs through klog, and at
// the default 0 nothing of it is printed.
func addLogFlags(root *cobra.Command) {
	fs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(fs)
	root.PersistentFlags().AddGoFlag(fs.Lookup("v"))
	root.PersistentFlags().Lookup("v").Usage = "log verbosity of the scheduler and provisioner code the commands run (to stderr)"
}

// quietLogs sends klog nowhere unless -v was given.
func quietLogs(cmd *cobra.Command) {
	if f := cmd.Flags().Lookup("v"); f != nil && f.Changed && f.Value.String() != "0" {
		klog.SetOutput(cmd.ErrOrStderr())
		return
	}
	klog.LogToStderr(false)
	klog.SetOutput(io.Discard)
}

// errNoCluster says how to point kubectl fleet at a cluster.
func errNoCluster(err error) error {
	return fmt.Errorf("no cluster to talk to: %v (set KUBECONFIG or --kubeconfig, and --context)", err)
}
