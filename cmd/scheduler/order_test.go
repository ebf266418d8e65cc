package main

import (
	"slices"
	"testing"

	"k8s.io/klog/v2/ktesting"
	"k8s.io/kubernetes/cmd/kube-scheduler/app"
	"k8s.io/kubernetes/cmd/kube-scheduler/app/options"

	"github.com/fleet-scheduler/fleet-scheduler/plugins/provisioner"
)

// checkPostFilterOrder builds the scheduler in process from config, as main
// does, and checks the order the framework will run PostFilter plugins in:
// DefaultPreemption must get its chance before a node is launched.
func checkPostFilterOrder(t *testing.T, config, profile string) {
	t.Helper()
	_, ctx := ktesting.NewTestContext(t)
	opts := options.NewOptions()
	opts.ConfigFile = config
	opts.SecureServing.BindPort = 0
	opts.SecureServing.Required = false
	_, sched, err := app.Setup(ctx, opts, app.WithPlugin(provisioner.Name, provisioner.New))
	if err != nil {
		t.Fatal(err)
	}
	fw, ok := sched.Profiles[profile]
	if !ok {
		t.Fatalf("no profile %q", profile)
	}
	var got []string
	for _, p := range fw.ListPlugins().PostFilter.Enabled {
		got = append(got, p.Name)
	}
	// Other defaults (DynamicResources) may sit in between; what matters is
	// that preemption is tried first and launching comes last.
	preempt := slices.Index(got, "DefaultPreemption")
	if preempt < 0 || len(got) == 0 || got[len(got)-1] != provisioner.Name {
		t.Errorf("PostFilter plugins = %v, want DefaultPreemption before %s, %s last", got, provisioner.Name, provisioner.Name)
	}
}
