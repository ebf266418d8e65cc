package planner

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"k8s.io/cli-runtime/pkg/resource"

	"github.com/fleet-scheduler/fleet-scheduler/cmd/kubectl-fleet/internal/workload"
	"github.com/fleet-scheduler/fleet-scheduler/provision/pricing"
)

const examples = "../../../../manifests/examples"

// offlinePlan plans files against the example NodePool with the embedded
// catalogue: no cluster, no AWS.
func offlinePlan(t *testing.T, files ...string) *Plan {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	set, err := workload.Read(&resource.FilenameOptions{Filenames: files}, "default")
	if err != nil {
		t.Fatal(err)
	}
	pools, err := workload.Read(&resource.FilenameOptions{Filenames: []string{examples}}, "default")
	if err != nil {
		t.Fatal(err)
	}
	set.Merge(pools)
	cat, err := LoadCatalog(ctx, CatalogOptions{Offline: true, VMMemoryOverheadPercent: 0.075})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	plan, err := Make(ctx, Input{Set: set, Catalog: cat, EmptyCluster: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("planned %d pods in %s: %d claims, $%.4f/h", plan.Pods, time.Since(start).Round(time.Millisecond), len(plan.NodeClaims), plan.PricePerHour)
	return plan
}

// The runbook's scan-worker at 20 replicas on an empty cluster: 7 pods of
// 500m per t3a.xlarge (3.92 CPU allocatable), so 3 claims. The example
// pool allows spot and on-demand; offline, spot is priced at the
// on-demand price less the default discount, so the claims are spot.
func TestPlanOfflineScanWorker(t *testing.T) {
	plan := offlinePlan(t, "testdata/scan.yaml")
	if plan.Pods != 20 || len(plan.Unplaced) != 0 || len(plan.ExistingNodes) != 0 {
		t.Fatalf("pods %d, unplaced %v, on nodes %v", plan.Pods, plan.Unplaced, plan.ExistingNodes)
	}
	if len(plan.NodeClaims) != 3 {
		t.Fatalf("%d claims, want 3", len(plan.NodeClaims))
	}
	od, ok := pricing.OnDemand("t3a.xlarge")
	if !ok {
		t.Fatal("no price for t3a.xlarge")
	}
	price := od * (1 - pricing.DefaultSpotDiscount)
	pods := 0
	for _, c := range plan.NodeClaims {
		if c.NodePool != "default" || c.InstanceTypes[0] != "t3a.xlarge" || strings.Join(c.CapacityTypes, ",") != "spot,on-demand" || math.Abs(c.PricePerHour-price) > 1e-9 {
			t.Errorf("claim %+v: want nodepool default, t3a.xlarge first, spot then on-demand, $%v", c, price)
		}
		for _, it := range c.InstanceTypes {
			if !strings.HasPrefix(it, "t3") || !strings.HasSuffix(it, ".xlarge") {
				t.Errorf("claim %s may launch as %s: the example pool allows t3/t3a up to xlarge, and 7 pods need an xlarge", c.Name, it)
			}
		}
		pods += len(c.Pods)
	}
	if pods != 20 {
		t.Errorf("claims hold %d pods", pods)
	}
	if want := 3 * price; math.Abs(plan.PricePerHour-want) > 1e-6 {
		t.Errorf("price %v, want %v", plan.PricePerHour, want)
	}
	if !strings.Contains(plan.Catalog, "offline") {
		t.Errorf("catalogue %q does not say it is offline", plan.Catalog)
	}
}

// Every workload kind at once: the StatefulSet's 2 pods (named by
// ordinal), the Job's 2 (completions bound parallelism), the DaemonSet as
// overhead on each new node, a pod no instance type holds (with the
// pool's words), and the ConfigMap noted as not planned.
func TestPlanOfflineMixed(t *testing.T) {
	plan := offlinePlan(t, "testdata/mixed.yaml")
	if plan.Pods != 5 {
		t.Errorf("planned %d pods, want 5 (2 db, 2 migrate, 1 huge)", plan.Pods)
	}
	var names []string
	for _, c := range plan.NodeClaims {
		names = append(names, c.Pods...)
		// The agent's 100m on every node is in the claim's requests.
		if got := c.Requests.Cpu().MilliValue() % 250; got != 100 {
			t.Errorf("claim %s requests %s cpu: the pods' multiples of 250m plus the agent's 100m", c.Name, c.Requests.Cpu())
		}
	}
	joined := strings.Join(names, " ")
	for _, want := range []string{"data/db-0", "data/db-1", "data/migrate-"} {
		if !strings.Contains(joined, want) {
			t.Errorf("claims hold %v, want %s", names, want)
		}
	}
	if len(plan.Unplaced) != 1 || plan.Unplaced[0].Pod != "default/huge" {
		t.Fatalf("unplaced %+v, want default/huge", plan.Unplaced)
	}
	u := plan.Unplaced[0]
	if !strings.Contains(u.NodePools["default"], "no instance type has room for the pod's requests plus daemonset overhead") ||
		!strings.Contains(u.NodePools["default"], "cpu=1000100m") {
		t.Errorf("huge's reason for pool default: %q (want the daemonset's 100m counted)", u.NodePools["default"])
	}
	if !strings.Contains(strings.Join(plan.Notes, "\n"), "1 ConfigMap") {
		t.Errorf("notes %v do not mention the ConfigMap left out", plan.Notes)
	}
}
