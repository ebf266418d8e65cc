package lifecycle_test

import (
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/google/uuid"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/tools/cache"
	k8smetrics "k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/testutil"
	"k8s.io/klog/v2"

	ec2v1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/ec2/v1"
	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
	karplisters "github.com/fleet-scheduler/fleet-scheduler/provision/client/listers/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/ec2"
	"github.com/fleet-scheduler/fleet-scheduler/provision/metrics"
	"github.com/fleet-scheduler/fleet-scheduler/provision/nodeclaim/lifecycle"
	"github.com/fleet-scheduler/fleet-scheduler/provision/nodepool"
	"github.com/fleet-scheduler/fleet-scheduler/provision/packing"
	nct "github.com/fleet-scheduler/fleet-scheduler/test/nodeclaimtest"
)

// TestLifecycle runs launch, registration, initialization and the
// insufficient-capacity path on one apiserver, one moto and one operator
// whose AWS calls go through a proxy that can fail CreateFleet. Scenarios
// keep apart by NodePool.
func TestLifecycle(t *testing.T) {
	e := nct.Start(t)
	op, proxy := e.StartOperatorBehindProxy(t, nct.OperatorOptions{})
	h := &harness{e: e, op: op, proxy: proxy}

	t.Run("Launch", h.launch)
	t.Run("Registration", h.registration)
	t.Run("Initialization", h.initialization)
	t.Run("InsufficientCapacity", h.insufficientCapacity)
	t.Run("DeletedDuringLaunch", h.deletedDuringLaunch)
	t.Run("LaunchFromStaleCache", h.launchFromStaleCache)
}

type harness struct {
	e     *nct.Env
	op    *nct.Operator
	proxy *nct.Proxy
}

// launch: one running instance tagged with the claim, and the claim says
// what it launched as.
func (h *harness) launch(t *testing.T) {
	for _, tc := range []struct {
		name          string
		pool          nct.Pool
		instanceTypes []string
		wantType      string
		wantLabels    map[string]string
	}{{
		name:          "one instance type",
		pool:          nct.Pool{Name: "launch-one", Labels: map[string]string{"managed-by": "karpenter"}, Requirements: []karpv1.NodeSelectorRequirementWithMinValues{nct.OnDemand}},
		instanceTypes: []string{"t3.medium"},
		wantType:      "t3.medium",
		wantLabels: map[string]string{
			"managed-by": "karpenter", karpv1.NodePoolLabelKey: "launch-one", karpv1.CapacityTypeLabelKey: "on-demand",
			v1.LabelArchStable: "amd64", v1.LabelOSStable: "linux", v1.LabelTopologyRegion: "us-east-1",
			"karpenter.k8s.aws/instance-family": "t3", "karpenter.k8s.aws/instance-size": "medium",
			"karpenter.k8s.aws/instance-cpu": "2",
		},
	}, {
		name: "cheapest of several, requirement label",
		pool: nct.Pool{Name: "launch-many", Requirements: []karpv1.NodeSelectorRequirementWithMinValues{
			nct.OnDemand, nct.Req("team", v1.NodeSelectorOpIn, "scan"),
		}},
		instanceTypes: []string{"m5.xlarge", "m5.large", "m5.2xlarge"},
		wantType:      "m5.large",
		// A single-valued requirement on a key no instance type defines
		// labels the node: pods selecting team=scan were packed onto it.
		wantLabels: map[string]string{"team": "scan", karpv1.NodePoolLabelKey: "launch-many", "karpenter.k8s.aws/instance-family": "m5"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			e := h.e
			e.CreatePool(t, tc.pool)
			nc := h.op.CreateClaim(t, e, tc.pool.Name, tc.instanceTypes...)
			nc = e.WaitLaunched(t, nc.Name)

			insts := e.LiveInstances(t, nc.Name)
			if len(insts) != 1 {
				t.Fatalf("live instances tagged with %s: %+v, want exactly one", nc.Name, insts)
			}
			inst := insts[0]
			if inst.Type != tc.wantType {
				t.Errorf("launched %s, want %s (the cheapest)", inst.Type, tc.wantType)
			}
			for k, v := range map[string]string{
				"kubernetes.io/cluster/" + nct.ClusterName: "owned", karpv1.NodePoolLabelKey: tc.pool.Name,
				"karpenter.k8s.aws/ec2nodeclass": nct.NodeClassName, "Name": nc.Name, "Project": "sesacthon",
			} {
				if inst.Tags[k] != v {
					t.Errorf("instance tag %s = %q, want %q", k, inst.Tags[k], v)
				}
			}
			if want := ec2.FormatProviderID(inst.Zone, inst.ID); nc.Status.ProviderID != want {
				t.Errorf("status.providerID = %q, want %q", nc.Status.ProviderID, want)
			}
			if nc.Status.ImageID != e.World.ImageID || inst.ImageID != e.World.ImageID {
				t.Errorf("status.imageID %q, instance image %q, want %q", nc.Status.ImageID, inst.ImageID, e.World.ImageID)
			}
			if nc.Status.Capacity.Cpu().IsZero() || nc.Status.Allocatable.Memory().IsZero() || nc.Status.Allocatable.Pods().IsZero() ||
				nc.Status.Allocatable.Cpu().Cmp(*nc.Status.Capacity.Cpu()) > 0 {
				t.Errorf("status capacity %v allocatable %v", nc.Status.Capacity, nc.Status.Allocatable)
			}
			want := map[string]string{v1.LabelInstanceTypeStable: inst.Type, v1.LabelTopologyZone: inst.Zone, karpv1.CapacityTypeLabelKey: "on-demand"}
			for k, v := range tc.wantLabels {
				want[k] = v
			}
			for k, v := range want {
				if got, ok := nc.Labels[k]; !ok || got != v {
					t.Errorf("claim label %s = %q, want %q", k, got, v)
				}
			}
			class, err := e.Karp.EC2V1().EC2NodeClasses().Get(e.Ctx, nct.NodeClassName, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			// The example class names a role: the instance profile made for it.
			if lt := e.LaunchTemplate(t, nc.Name); class.Status.InstanceProfile == "" || lt.IamInstanceProfile == nil ||
				aws.ToString(lt.IamInstanceProfile.Name) != class.Status.InstanceProfile {
				t.Errorf("launch template instance profile %+v, want status.instanceProfile %q", lt.IamInstanceProfile, class.Status.InstanceProfile)
			}
			if got := nc.Annotations[ec2v1.AnnotationEC2NodeClassHash]; got != class.Hash() ||
				nc.Annotations[ec2v1.AnnotationEC2NodeClassHashVersion] != ec2v1.EC2NodeClassHashVersion {
				t.Errorf("claim's node class hash %q (version %q), want %q: drift could not be told", got,
					nc.Annotations[ec2v1.AnnotationEC2NodeClassHashVersion], class.Hash())
			}
			if c := nc.GetCondition(karpv1.ConditionTypeLaunched); c == nil || c.Status != metav1.ConditionTrue {
				t.Errorf("Launched = %+v", c)
			}
			if c := nc.GetCondition(karpv1.ConditionTypeReady); c == nil || c.Status == metav1.ConditionTrue {
				t.Errorf("Ready = %+v before the node registered", c)
			}
			note := e.WaitEvent(t, nc.Name, "Launched")
			if !strings.Contains(note, inst.Type) || !strings.Contains(note, nc.Status.ProviderID) {
				t.Errorf("Launched event %q names neither the type nor the provider ID", note)
			}
			if !e.LaunchTemplateExists(t, nc.Name) {
				t.Errorf("no launch template for %s", nc.Name)
			}
			// Nothing more happens without a Node: still one instance.
			nct.Never(t, time.Second, "a second instance", func() bool { return len(e.ClaimInstances(t, nc.Name)) != 1 })
		})
	}
}

func conditionStatus(nc *karpv1.NodeClaim, conditionType string) metav1.ConditionStatus {
	if c := meta.FindStatusCondition(nc.Status.Conditions, conditionType); c != nil {
		return c.Status
	}
	return ""
}

// registration: the Node the kubelet registers under the claim's name is
// linked to the claim, labelled and untainted; a Node of that name from
// another machine is left alone.
func (h *harness) registration(t *testing.T) {
	e := h.e
	dedicated := v1.Taint{Key: "dedicated", Value: "batch", Effect: v1.TaintEffectNoSchedule}
	startup := v1.Taint{Key: "example.com/agent-not-ready", Effect: v1.TaintEffectNoSchedule}
	notReady := v1.Taint{Key: v1.TaintNodeNotReady, Effect: v1.TaintEffectNoSchedule}
	pool := nct.Pool{
		Name: "reg",
		Labels: map[string]string{
			"managed-by": "karpenter",
			// NodeRestriction keeps the kubelet from setting labels under
			// node-restriction.kubernetes.io/ (Karpenter's templates allow
			// it for that reason), so registration must.
			"node-restriction.kubernetes.io/team": "scan",
		},
		Requirements:  []karpv1.NodeSelectorRequirementWithMinValues{nct.OnDemand, nct.Req("team", v1.NodeSelectorOpIn, "scan")},
		Taints:        []v1.Taint{dedicated},
		StartupTaints: []v1.Taint{startup},
	}
	e.CreatePool(t, pool)
	const foreignID = "aws:///us-east-1a/i-0123456789abcdef0"
	// onlyUnregistered is a kubelet whose flags lost the claim's taints.
	onlyUnregistered := func(node *v1.Node) {
		node.Spec.Taints = []v1.Taint{karpv1.UnregisteredNoExecuteTaint()}
	}

	for _, tc := range []struct {
		name   string
		mutate func(node *v1.Node, nc *karpv1.NodeClaim)
		adopt  bool
		// wantTaints are on the Node after registration, noTaints not.
		wantTaints, noTaints []v1.Taint
	}{{
		name: "kubelet registration",
		// What node lifecycle puts on a new Node: must survive.
		mutate:     func(node *v1.Node, _ *karpv1.NodeClaim) { node.Spec.Taints = append(node.Spec.Taints, notReady) },
		adopt:      true,
		wantTaints: []v1.Taint{dedicated, startup, notReady},
	}, {
		name:       "provider ID already set by the kubelet",
		mutate:     func(node *v1.Node, nc *karpv1.NodeClaim) { node.Spec.ProviderID = nc.Status.ProviderID },
		adopt:      true,
		wantTaints: []v1.Taint{dedicated, startup},
	}, {
		name:       "kubelet registered without the claim's taints",
		mutate:     func(node *v1.Node, _ *karpv1.NodeClaim) { onlyUnregistered(node) },
		adopt:      true,
		wantTaints: []v1.Taint{dedicated, startup},
	}, {
		name: "node opts out of taint sync",
		mutate: func(node *v1.Node, _ *karpv1.NodeClaim) {
			onlyUnregistered(node)
			node.Labels[karpv1.NodeDoNotSyncTaintsLabelKey] = "true"
		},
		adopt:    true,
		noTaints: []v1.Taint{dedicated, startup},
	}, {
		name:   "another machine's node",
		mutate: func(node *v1.Node, _ *karpv1.NodeClaim) { node.Spec.ProviderID = foreignID },
	}} {
		t.Run(tc.name, func(t *testing.T) {
			nc := e.WaitLaunched(t, h.op.CreateClaim(t, e, pool.Name, "t3.medium").Name)
			join := e.Join(t, nc.Name)
			if _, ok := join.Labels["node-restriction.kubernetes.io/team"]; ok {
				t.Errorf("--node-labels carries node-restriction.kubernetes.io/team: the kubelet would refuse to start")
			}
			if !nct.HasTaint(join.Taints, karpv1.UnregisteredTaintKey, v1.TaintEffectNoExecute) {
				t.Errorf("--register-with-taints %v lacks the unregistered taint", join.Taints)
			}
			if len(e.TokenSecrets(t, nc.Name)) != 1 {
				t.Fatalf("bootstrap tokens of %s: %v, want one", nc.Name, e.TokenSecrets(t, nc.Name))
			}
			e.RegisterNode(t, nc.Name, func(node *v1.Node) { tc.mutate(node, nc) })

			if !tc.adopt {
				note := e.WaitEvent(t, nc.Name, "ProviderIDMismatch")
				if !strings.Contains(note, foreignID) {
					t.Errorf("ProviderIDMismatch event %q does not name the node's provider ID", note)
				}
				nct.Never(t, 2*time.Second, "claim registered to another machine's node", func() bool {
					return conditionStatus(e.Claim(t, nc.Name), karpv1.ConditionTypeRegistered) == metav1.ConditionTrue
				})
				if c := e.Claim(t, nc.Name).GetCondition(karpv1.ConditionTypeRegistered); c == nil || c.Status != metav1.ConditionFalse || c.Reason != "ProviderIDMismatch" {
					t.Errorf("Registered = %+v, want False/ProviderIDMismatch", c)
				}
				// The node's heartbeats requeue the claim; one event says it.
				e.SetNodeReady(t, nc.Name, true)
				e.SetNodeReady(t, nc.Name, true)
				time.Sleep(time.Second)
				if evs := e.Events(t, nc.Name, "ProviderIDMismatch"); len(evs) != 1 || (evs[0].Series != nil && evs[0].Series.Count > 1) {
					t.Errorf("ProviderIDMismatch events: %d (series %+v), want one", len(evs), evs[0].Series)
				}
				node := e.Node(t, nc.Name)
				if node.Spec.ProviderID != foreignID || len(node.OwnerReferences) != 0 || node.Labels[karpv1.NodeRegisteredLabelKey] != "" ||
					!nct.HasTaint(node.Spec.Taints, karpv1.UnregisteredTaintKey, v1.TaintEffectNoExecute) {
					t.Errorf("another machine's node was changed: providerID %q owners %v labels %v taints %v",
						node.Spec.ProviderID, node.OwnerReferences, node.Labels, node.Spec.Taints)
				}
				if got := e.Claim(t, nc.Name).Status.NodeName; got != "" {
					t.Errorf("status.nodeName = %q", got)
				}
				return
			}

			nc = e.WaitClaim(t, nc.Name, "registered", func(nc *karpv1.NodeClaim) bool {
				return conditionStatus(nc, karpv1.ConditionTypeRegistered) == metav1.ConditionTrue
			})
			if nc.Status.NodeName != nc.Name {
				t.Errorf("status.nodeName = %q, want %q", nc.Status.NodeName, nc.Name)
			}
			node := e.Node(t, nc.Name)
			if node.Spec.ProviderID != nc.Status.ProviderID {
				t.Errorf("node providerID %q, want the claim's %q", node.Spec.ProviderID, nc.Status.ProviderID)
			}
			for k, v := range nc.Labels {
				if got, ok := node.Labels[k]; !ok || got != v {
					t.Errorf("node label %s = %q (set %t), want the claim's %q", k, got, ok, v)
				}
			}
			for k, v := range map[string]string{
				"node-restriction.kubernetes.io/team": "scan", "team": "scan", "managed-by": "karpenter",
				karpv1.NodeRegisteredLabelKey: "true", v1.LabelInstanceTypeStable: "t3.medium",
				karpv1.NodePoolLabelKey: pool.Name, v1.LabelHostname: nc.Name,
			} {
				if got, ok := node.Labels[k]; !ok || got != v {
					t.Errorf("node label %s = %q (set %t), want %q", k, got, ok, v)
				}
			}
			if len(node.OwnerReferences) != 1 || node.OwnerReferences[0].Kind != "NodeClaim" || node.OwnerReferences[0].UID != nc.UID ||
				node.OwnerReferences[0].APIVersion != karpv1.SchemeGroupVersion.String() {
				t.Errorf("node owner references %+v, want the claim", node.OwnerReferences)
			}
			if nct.HasTaint(node.Spec.Taints, karpv1.UnregisteredTaintKey, v1.TaintEffectNoExecute) {
				t.Errorf("node still has the unregistered taint: %v", node.Spec.Taints)
			}
			for _, taint := range tc.wantTaints {
				if !nct.HasTaint(node.Spec.Taints, taint.Key, taint.Effect) {
					t.Errorf("node taints %v lack %s", node.Spec.Taints, taint.ToString())
				}
			}
			for _, taint := range tc.noTaints {
				if nct.HasTaint(node.Spec.Taints, taint.Key, taint.Effect) {
					t.Errorf("node taints %v have %s", node.Spec.Taints, taint.ToString())
				}
			}
			if conditionStatus(nc, karpv1.ConditionTypeInitialized) == metav1.ConditionTrue {
				t.Errorf("initialized before the node was Ready")
			}
			// The kubelet has its certificate: the join token goes.
			nct.Eventually(t, 10*time.Second, "the node's bootstrap token revoked", func() bool {
				return len(e.TokenSecrets(t, nc.Name)) == 0
			})
		})
	}
}

// initialization: a registered node counts only once it is Ready and its
// startup taints are gone.
func (h *harness) initialization(t *testing.T) {
	e := h.e
	startup := v1.Taint{Key: "example.com/agent-not-ready", Effect: v1.TaintEffectNoSchedule}
	e.CreatePool(t, nct.Pool{Name: "init", Requirements: []karpv1.NodeSelectorRequirementWithMinValues{nct.OnDemand}, StartupTaints: []v1.Taint{startup}})
	e.CreatePool(t, nct.Pool{Name: "init-plain", Requirements: []karpv1.NodeSelectorRequirementWithMinValues{nct.OnDemand}})

	for _, tc := range []struct {
		name string
		pool string
		// before leaves the node registered but not initialized; after
		// should make it initialized.
		before, after func(t *testing.T, node string)
	}{{
		name:   "startup taint removed",
		pool:   "init",
		before: func(t *testing.T, node string) { e.SetNodeReady(t, node, true) },
		after:  func(t *testing.T, node string) { removeTaint(t, h.e, node, startup) },
	}, {
		name:   "node becomes Ready",
		pool:   "init-plain",
		before: func(t *testing.T, node string) { e.SetNodeReady(t, node, false) },
		after:  func(t *testing.T, node string) { e.SetNodeReady(t, node, true) },
	}} {
		t.Run(tc.name, func(t *testing.T) {
			nc := e.WaitLaunched(t, h.op.CreateClaim(t, e, tc.pool, "t3.medium").Name)
			e.RegisterNode(t, nc.Name, nil)
			tc.before(t, nc.Name)
			e.WaitClaim(t, nc.Name, "registered", func(nc *karpv1.NodeClaim) bool {
				return conditionStatus(nc, karpv1.ConditionTypeRegistered) == metav1.ConditionTrue
			})
			if tc.pool == "init" && !nct.HasTaint(e.Node(t, nc.Name).Spec.Taints, startup.Key, startup.Effect) {
				t.Fatalf("the startup taint is not on the node: %v", e.Node(t, nc.Name).Spec.Taints)
			}
			nct.Never(t, 2*time.Second, "initialized too early", func() bool {
				got := e.Claim(t, nc.Name)
				return conditionStatus(got, karpv1.ConditionTypeInitialized) == metav1.ConditionTrue ||
					conditionStatus(got, karpv1.ConditionTypeReady) == metav1.ConditionTrue
			})
			if got := e.Node(t, nc.Name).Labels[karpv1.NodeInitializedLabelKey]; got != "" {
				t.Errorf("node labelled initialized=%q too early", got)
			}

			tc.after(t, nc.Name)
			nc = e.WaitClaim(t, nc.Name, "initialized", func(nc *karpv1.NodeClaim) bool {
				return conditionStatus(nc, karpv1.ConditionTypeInitialized) == metav1.ConditionTrue
			})
			if c := nc.GetCondition(karpv1.ConditionTypeReady); c == nil || c.Status != metav1.ConditionTrue {
				t.Errorf("Ready = %+v after initialization", c)
			}
			if got := e.Node(t, nc.Name).Labels[karpv1.NodeInitializedLabelKey]; got != "true" {
				t.Errorf("node label %s = %q, want true", karpv1.NodeInitializedLabelKey, got)
			}
			// One launch-to-initialized observation for the pool, at least
			// as long as the node was held back above. The controller
			// observes it just after the status update this test saw, so
			// give it a moment.
			hist := metrics.NodeClaimsStartupDuration.WithLabelValues(tc.pool)
			nct.Eventually(t, 5*time.Second, "a startup duration observation", func() bool {
				n, err := testutil.GetHistogramMetricCount(hist)
				return err == nil && n >= 1
			})
			if n, err := testutil.GetHistogramMetricCount(hist); err != nil || n != 1 {
				t.Errorf("karpenter_nodeclaims_startup_duration_seconds{nodepool=%q} count %d (%v), want 1", tc.pool, n, err)
			}
			if sum, err := testutil.GetHistogramMetricValue(hist); err != nil || sum < 1 {
				t.Errorf("karpenter_nodeclaims_startup_duration_seconds{nodepool=%q} sum %.3fs (%v), want >= 1s (the node was held back 2s)", tc.pool, sum, err)
			}
		})
	}
}

func removeTaint(t *testing.T, e *nct.Env, name string, taint v1.Taint) {
	t.Helper()
	e.UpdateNode(t, name, false, func(node *v1.Node) {
		var kept []v1.Taint
		for _, x := range node.Spec.Taints {
			if !x.MatchTaint(&taint) {
				kept = append(kept, x)
			}
		}
		node.Spec.Taints = kept
	})
}

// insufficientCapacity: EC2 Fleet has no capacity for any offering of the
// claim. The claim is given up (deleted, so its pods are provisioned again),
// the offerings are taken out of use, and the claim says why.
func (h *harness) insufficientCapacity(t *testing.T) {
	e := h.e
	h.proxy.FailFleet("InsufficientInstanceCapacity")
	t.Cleanup(h.proxy.Pass)
	e.CreatePool(t, nct.Pool{Name: "ice", Requirements: []karpv1.NodeSelectorRequirementWithMinValues{nct.OnDemand}})
	types := []string{"c5.large", "c5a.large"}
	nc := h.op.CreateClaim(t, e, "ice", types...)
	note := e.WaitEvent(t, nc.Name, "InsufficientCapacity")
	if !strings.Contains(note, "InsufficientInstanceCapacity") {
		t.Errorf("event %q does not name EC2's error", note)
	}
	e.WaitClaimGone(t, nc.Name, 30*time.Second)
	if got := e.ClaimInstances(t, nc.Name); len(got) != 0 {
		t.Errorf("instances after a capacity failure: %+v", got)
	}
	for name, m := range map[string]k8smetrics.CounterMetric{
		"karpenter_cloudprovider_errors_total{error=InsufficientCapacityError}": metrics.CloudProviderErrors.WithLabelValues(lifecycle.Name, "Create", "aws", "InsufficientCapacityError"),
		"karpenter_nodeclaims_disrupted_total{reason=insufficient_capacity}":    metrics.NodeClaimsDisrupted.WithLabelValues("insufficient_capacity", "ice"),
	} {
		if v, err := testutil.GetCounterMetricValue(m); err != nil || v < 1 {
			t.Errorf("%s = %v (%v), want at least 1", name, v, err)
		}
	}
	if e.LaunchTemplateExists(t, nc.Name) {
		t.Errorf("the launch template outlived the claim")
	}
	catalogTypes, err := h.op.Catalog.Catalog.Get(e.Ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Every offering the fleet was asked for: on-demand in the zones of
	// the EC2NodeClass's subnets.
	asked := map[string]bool{"us-east-1a": true, "us-east-1b": true, "us-east-1c": true}
	marked := 0
	for _, it := range catalogTypes {
		for _, o := range it.Offerings {
			if o.CapacityType == karpv1.CapacityTypeOnDemand && asked[o.Zone] && (it.Name == types[0] || it.Name == types[1]) {
				if o.Available {
					t.Errorf("offering %s %s %s still available after EC2 had no capacity for it", it.Name, o.Zone, o.CapacityType)
				}
				marked++
			}
		}
	}
	if marked != 6 {
		t.Errorf("%d on-demand offerings of %v in zones a-c in the catalogue, want 6", marked, types)
	}
	// The pool no longer offers them, so the plugin packs elsewhere.
	for _, o := range h.op.Options(t, "ice") {
		if o.InstanceType == types[0] || o.InstanceType == types[1] {
			t.Fatalf("nodepool ice still offers %s in %s", o.InstanceType, o.Zone)
		}
	}
}

// deletedDuringLaunch: `kubectl delete nodeclaim` while CreateFleet has not
// answered yet. Whatever order launch and termination finish in, no
// instance outlives the claim.
func (h *harness) deletedDuringLaunch(t *testing.T) {
	e := h.e
	e.CreatePool(t, nct.Pool{Name: "del", Requirements: []karpv1.NodeSelectorRequirementWithMinValues{nct.OnDemand}})
	release := h.proxy.HoldFleet()
	t.Cleanup(h.proxy.Pass)
	defer release()
	nc := h.op.CreateClaim(t, e, "del", "t3.medium")
	select {
	case <-h.proxy.Launched():
	case <-time.After(30 * time.Second):
		t.Fatal("CreateFleet never reached moto")
	}
	if err := e.Karp.KarpenterV1().NodeClaims().Delete(e.Ctx, nc.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // termination runs, up to the launch
	release()
	e.WaitClaimGone(t, nc.Name, 30*time.Second)
	nct.Eventually(t, 10*time.Second, "the claim's instance terminated", func() bool {
		all := e.ClaimInstances(t, nc.Name)
		return len(all) == 1 && nct.Gone(all[0].State)
	})
	if e.LaunchTemplateExists(t, nc.Name) {
		t.Errorf("launch template outlived the claim")
	}
}

// launchFromStaleCache: the controller launches a claim its cache still
// has but that was deleted and released meanwhile (termination found no
// instance to end). Nothing else would ever terminate what it launched, so
// the launch must.
func (h *harness) launchFromStaleCache(t *testing.T) {
	e := h.e
	np := e.CreatePool(t, nct.Pool{Name: "stale", Requirements: []karpv1.NodeSelectorRequirementWithMinValues{nct.OnDemand}})
	nc := nodepool.NewNodeClaim(np, packing.ClaimSpec{Name: "stale-" + utilrand.String(5), NodePool: np.Name, Options: h.op.Options(t, np.Name, "t3.medium")})
	nc.UID = types.UID(uuid.NewString())
	nc.ResourceVersion = "1"
	cached := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	if err := cached.Add(nc); err != nil {
		t.Fatal(err)
	}
	c := &lifecycle.Controller{
		Karpenter: e.Karp, Kube: e.Kube, NodeClaims: karplisters.NewNodeClaimLister(cached),
		Nodes: h.op.KubeInformers.Core().V1().Nodes().Lister(), Cloud: h.op.Cloud, Recorder: h.op.Recorder,
		RegistrationTTL: 15 * time.Minute,
	}
	if _, err := c.Reconcile(klog.NewContext(e.Ctx, klog.Background()), nc.Name); err != nil {
		t.Errorf("Reconcile: %v", err)
	}
	all := e.ClaimInstances(t, nc.Name)
	if len(all) != 1 || !nct.Gone(all[0].State) {
		t.Errorf("instances launched for the deleted claim: %+v, want one, terminated", all)
	}
	if e.LaunchTemplateExists(t, nc.Name) || len(e.TokenSecrets(t, nc.Name)) != 0 {
		t.Errorf("launch template or bootstrap token left for the deleted claim")
	}
}
