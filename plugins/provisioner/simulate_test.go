package provisioner

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/kubernetes/pkg/scheduler/framework"

	ec2v1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/ec2/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/catalog"
	"github.com/fleet-scheduler/fleet-scheduler/provision/packing"
	"github.com/fleet-scheduler/fleet-scheduler/provision/pricing"
)

// examplePool is the example NodePool (on-demand amd64 t3/t3a, medium to
// xlarge) over the offline catalogue, with remaining limits.
func examplePool(t testing.TB, remaining v1.ResourceList) *packing.Pool {
	t.Helper()
	prices, err := pricing.NewLive(nil)
	if err != nil {
		t.Fatal(err)
	}
	cat, err := catalog.NewOffline(prices, catalog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := cat.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	options, err := (&catalog.ClassOptions{Catalog: cat}).Options(&ec2v1.EC2NodeClass{ObjectMeta: metav1.ObjectMeta{Name: "default", ResourceVersion: "1"}})
	if err != nil {
		t.Fatal(err)
	}
	sel, err := packing.RequirementsSelector([]v1.NodeSelectorRequirement{
		{Key: v1.LabelArchStable, Operator: v1.NodeSelectorOpIn, Values: []string{"amd64"}},
		{Key: "karpenter.sh/capacity-type", Operator: v1.NodeSelectorOpIn, Values: []string{"on-demand"}},
		{Key: "karpenter.k8s.aws/instance-family", Operator: v1.NodeSelectorOpIn, Values: []string{"t3", "t3a"}},
		{Key: "karpenter.k8s.aws/instance-size", Operator: v1.NodeSelectorOpIn, Values: []string{"medium", "large", "xlarge"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{"karpenter.sh/nodepool": "default", "managed-by": "karpenter"}
	return &packing.Pool{Name: "default", Labels: labels, Options: packing.NewPoolOptions(options, labels, sel),
		DaemonRequests: packing.Sum(), Remaining: remaining}
}

func scanPods(n int, cpu string) []*v1.Pod {
	pods := make([]*v1.Pod, n)
	for i := range pods {
		pods[i] = &v1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("scan-worker-%d", i), Namespace: "scan", Labels: map[string]string{"app": "scan-worker"}},
			Spec: v1.PodSpec{SchedulerName: v1.DefaultSchedulerName, Containers: []v1.Container{{Name: "w", Image: "registry.k8s.io/pause:3.10",
				Resources: v1.ResourceRequirements{Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse(cpu), v1.ResourceMemory: resource.MustParse("512Mi")}}}}},
		}
	}
	return pods
}

// worker is a Ready t3.large-sized node fleet-scheduler does not manage.
func worker(name string) *v1.Node {
	rl := v1.ResourceList{v1.ResourceCPU: resource.MustParse("1930m"), v1.ResourceMemory: resource.MustParse("7Gi"), v1.ResourcePods: resource.MustParse("110")}
	return &v1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{v1.LabelHostname: name, v1.LabelTopologyZone: "us-east-1a"}},
		Status:     v1.NodeStatus{Capacity: rl, Allocatable: rl, Conditions: []v1.NodeCondition{{Type: v1.NodeReady, Status: v1.ConditionTrue}}},
	}
}

func runSimulation(t *testing.T, sim *Simulation, pods []*v1.Pod) *SimulationResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := time.Now()
	res, err := sim.Run(ctx, pods)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d pods decided in %s: %d claims, %d on nodes, %d unplaced", len(pods), time.Since(start).Round(time.Millisecond), len(res.Claims), len(res.OnNodes), len(res.Unplaced))
	return res
}

// checkClaimsHold fails unless every claim's cheapest option holds its
// pods, and returns how many pods the claims hold.
func checkClaimsHold(t *testing.T, res *SimulationResult) int {
	t.Helper()
	n := 0
	for _, c := range res.Claims {
		used := packing.Sum()
		for _, p := range c.Pods {
			packing.Add(used, packing.PodRequests(p))
		}
		if len(c.Options) == 0 || !packing.Fits(used, c.Options[0].AllocatableResource()) {
			t.Errorf("claim %s: %d pods (%d mCPU) do not fit its cheapest option", c.Name, len(c.Pods), used.MilliCPU)
		}
		n += len(c.Pods)
	}
	return n
}

// With no node at all (a plan offline), every pod still reaches the
// Provisioner: 20 x 500m pack onto t3a.xlarge claims, 7 to a node.
func TestSimulationEmptyCluster(t *testing.T) {
	sim := &Simulation{Pools: staticPools{[]*packing.Pool{examplePool(t, nil)}}}
	res := runSimulation(t, sim, scanPods(20, "500m"))
	if len(res.Unplaced) != 0 || len(res.OnNodes) != 0 {
		t.Fatalf("unplaced %+v, on nodes %+v", res.Unplaced, res.OnNodes)
	}
	if n := checkClaimsHold(t, res); n != 20 {
		t.Errorf("claims hold %d pods, want 20", n)
	}
	if len(res.Claims) != 3 {
		t.Errorf("%d claims, want 3 (7 pods of 500m per t3a.xlarge)", len(res.Claims))
	}
	for _, c := range res.Claims {
		if c.InFlight || c.NodePool != "default" || c.Options[0].InstanceType != "t3a.xlarge" {
			t.Errorf("claim %s: pool %s, in flight %t, cheapest %s", c.Name, c.NodePool, c.InFlight, c.Options[0].InstanceType)
		}
	}
}

// Existing nodes are used first, as the scheduler's Filter and Score
// plugins choose: two t3.large workers with 3 pods already take 4 more
// (4 of 500m each), and the other 13 open claims.
func TestSimulationExistingNodesFirst(t *testing.T) {
	bound := scanPods(3, "500m")
	cluster := []runtime.Object{worker("w1"), worker("w2")}
	for i, p := range bound {
		p.Name, p.UID = fmt.Sprintf("running-%d", i), types.UID(fmt.Sprintf("running-%d", i))
		p.Spec.NodeName = []string{"w1", "w2", "w1"}[i]
		p.Status.Phase = v1.PodRunning
		cluster = append(cluster, p)
	}
	sim := &Simulation{Pools: staticPools{[]*packing.Pool{examplePool(t, nil)}}, Cluster: cluster}
	res := runSimulation(t, sim, scanPods(17, "500m"))
	perNode := map[string]int{}
	for _, p := range res.OnNodes {
		perNode[p.Node]++
	}
	if perNode["w1"] != 1 || perNode["w2"] != 2 {
		t.Errorf("placed on nodes %v, want w1=1 w2=2 (3 x 500m fit 1930m)", perNode)
	}
	if n := checkClaimsHold(t, res); n != 14 || len(res.Unplaced) != 0 {
		t.Errorf("claims hold %d pods (want 14), unplaced %d", n, len(res.Unplaced))
	}
	if len(res.Claims) != 2 {
		t.Errorf("%d claims for 14 pods, want 2", len(res.Claims))
	}
}

// A pod no pool can take is reported with the scheduler's and the
// provisioner's words; a pool out of limits says so.
func TestSimulationUnplacedReasons(t *testing.T) {
	huge := scanPods(1, "1000")[0]
	huge.Name = "huge"
	sim := &Simulation{Pools: staticPools{[]*packing.Pool{examplePool(t, v1.ResourceList{v1.ResourceCPU: resource.MustParse("4")})}}}
	res := runSimulation(t, sim, append([]*v1.Pod{huge}, scanPods(10, "500m")...))
	reasons := map[string]string{}
	for _, u := range res.Unplaced {
		reasons[u.Pod.Name] = u.Provisioning
	}
	if r := reasons["huge"]; !strings.Contains(r, `nodepool "default": no instance type has room`) {
		t.Errorf("huge: %q", r)
	}
	// One claim of 4 vCPU fits the limit of 4: 7 pods; the other 3 are out of limits.
	if n := checkClaimsHold(t, res); n != 7 || len(res.Claims) != 1 {
		t.Errorf("%d claims hold %d pods, want 1 claim of 7 within a 4-cpu limit", len(res.Claims), n)
	}
	limited := 0
	for name, r := range reasons {
		if strings.Contains(r, "its limits leave no room for another node") {
			limited++
		} else if name != "huge" {
			t.Errorf("%s: %q", name, r)
		}
	}
	if limited != 3 {
		t.Errorf("%d pods held back by the limit, want 3: %v", limited, reasons)
	}
}

// inFlightPools serves one NodeClaim in flight besides the pools.
type inFlightPools struct {
	staticPools
	claim string
}

func (s inFlightPools) InFlight(pools []*packing.Pool) []packing.InFlight {
	var opts []*packing.PoolOption
	for _, o := range pools[0].Options {
		if o.InstanceType == "t3a.xlarge" && o.Zone == "us-east-1a" {
			opts = append(opts, o)
		}
	}
	return []packing.InFlight{{Name: s.claim, Pool: pools[0], Options: opts, Created: time.Now()}}
}

// A NodeClaim in flight with room takes pods before any new claim opens,
// with the pods already nominated to it counted.
func TestSimulationInFlightClaim(t *testing.T) {
	held := scanPods(2, "500m")
	cluster := []runtime.Object{worker("full")}
	for i, p := range held {
		p.Name, p.UID = fmt.Sprintf("held-%d", i), types.UID(fmt.Sprintf("held-%d", i))
		p.Status.NominatedNodeName = "default-inflt"
		cluster = append(cluster, p)
	}
	// The worker is full.
	filler := scanPods(1, "1900m")[0]
	filler.Name, filler.UID, filler.Spec.NodeName = "filler", "filler", "full"
	cluster = append(cluster, filler)
	pools := inFlightPools{staticPools{[]*packing.Pool{examplePool(t, nil)}}, "default-inflt"}
	res := runSimulation(t, &Simulation{Pools: pools, Cluster: cluster}, scanPods(7, "500m"))
	var inflight *SimulatedClaim
	for i := range res.Claims {
		if res.Claims[i].Name == "default-inflt" {
			inflight = &res.Claims[i]
		}
	}
	if inflight == nil || !inflight.InFlight {
		t.Fatalf("no in-flight claim in %+v", res.Claims)
	}
	// 7 fit a t3a.xlarge; 2 are held there: 5 of ours join them.
	ours := 0
	for _, p := range inflight.Pods {
		if strings.HasPrefix(p.Name, "scan-worker-") {
			ours++
		}
	}
	if len(inflight.Pods) != 7 || ours != 5 {
		t.Errorf("in-flight claim holds %d pods, %d of ours; want 7 and 5", len(inflight.Pods), ours)
	}
	if len(res.Claims) != 2 || checkClaimsHold(t, res) != 9 {
		t.Errorf("claims %d, want the in-flight one and one new", len(res.Claims))
	}
}

// BenchmarkSimulation1000Pods measures a plan of 1,000 pods of mixed
// sizes (100m to 2 CPUs) on the example pool and an empty cluster: the scheduler built over the in-memory copy,
// every pod created, queued and decided (Filter, Score, the Provisioner).
func BenchmarkSimulation1000Pods(b *testing.B) {
	pool := examplePool(b, nil)
	// mixedPods' sizes but its 4-CPU ones, which no t3 xlarge holds.
	var pods []*v1.Pod
	for _, p := range mixedPods(1200) {
		if p.Spec.Containers[0].Resources.Requests.Cpu().Value() < 4 && len(pods) < 1000 {
			pods = append(pods, p)
		}
	}
	b.ReportAllocs()
	var claims int
	for b.Loop() {
		res, err := (&Simulation{Pools: staticPools{[]*packing.Pool{pool}}}).Run(context.Background(), pods)
		if err != nil {
			b.Fatal(err)
		}
		if len(res.Unplaced) > 0 {
			b.Fatalf("%d pods unplaced: %+v", len(res.Unplaced), res.Unplaced[0])
		}
		claims = len(res.Claims)
	}
	b.ReportMetric(float64(claims), "nodes")
	b.ReportMetric(float64(len(pods)*b.N)/b.Elapsed().Seconds(), "pods/s")
}

var _ = framework.NewResource
