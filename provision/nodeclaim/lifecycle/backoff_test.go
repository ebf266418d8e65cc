package lifecycle_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/component-base/metrics/testutil"
	clocktesting "k8s.io/utils/clock/testing"

	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/cloudprovider"
	"github.com/fleet-scheduler/fleet-scheduler/provision/cloudprovider/aws"
	"github.com/fleet-scheduler/fleet-scheduler/provision/controller"
	"github.com/fleet-scheduler/fleet-scheduler/provision/ec2"
	"github.com/fleet-scheduler/fleet-scheduler/provision/launchhealth"
	"github.com/fleet-scheduler/fleet-scheduler/provision/metrics"
	"github.com/fleet-scheduler/fleet-scheduler/provision/nodeclaim/lifecycle"
	"github.com/fleet-scheduler/fleet-scheduler/provision/nodepool/status"
	"github.com/fleet-scheduler/fleet-scheduler/test/awsfault"
	nct "github.com/fleet-scheduler/fleet-scheduler/test/nodeclaimtest"
)

// backoffHarness drives the lifecycle and NodePool status controllers by
// hand on a fake clock, over the real operator's caches, cloud provider
// parts and a proxy in front of moto: five minutes pass in a moment.
type backoffHarness struct {
	e      *nct.Env
	op     *nct.Operator
	proxy  *nct.Proxy
	clk    *clocktesting.FakeClock
	lc     *lifecycle.Controller
	status *status.Controller
	ctx    context.Context
}

func newBackoffHarness(t *testing.T) *backoffHarness {
	e := nct.Start(t)
	op, proxy := e.StartOperatorBehindProxy(t, nct.OperatorOptions{Passive: true})
	clk := clocktesting.NewFakeClock(time.Now())
	health := launchhealth.New(launchhealth.Options{Clock: clk})
	cloud := &aws.Provider{ClusterName: nct.ClusterName, EC2: op.EC2, Catalog: op.Catalog, NodePools: op.Source.NodePools,
		NodeClasses: op.Source.NodeClasses, Overlays: op.Source.OverlayStore, Tokens: op.Tokens, Kube: op.Kube, UnavailableTTL: 3 * time.Minute, Health: health}
	karp, kube := op.Informers.Karpenter().V1(), op.KubeInformers.Core().V1()
	return &backoffHarness{e: e, op: op, proxy: proxy, clk: clk,
		lc: &lifecycle.Controller{Karpenter: op.Karpenter, Kube: op.Kube, NodeClaims: karp.NodeClaims().Lister(), Nodes: kube.Nodes().Lister(),
			Cloud: cloud, Recorder: op.Recorder, Clock: clk, Pods: kube.Pods().Informer().GetIndexer(), Health: health},
		status: &status.Controller{Karpenter: op.Karpenter, NodePools: karp.NodePools().Lister(), NodeClaims: karp.NodeClaims().Lister(),
			NodeClasses: op.Source.NodeClasses, Recorder: op.Recorder, Health: health},
		ctx: controller.WithName(e.Ctx, lifecycle.Name),
	}
}

// reconcile runs every claim through the lifecycle controller, as often
// as a busy queue would (every step), for d of fake time.
func (h *backoffHarness) reconcile(t *testing.T, d, step time.Duration, claims ...*karpv1.NodeClaim) {
	t.Helper()
	for end := h.clk.Now().Add(d); !h.clk.Now().After(end); h.clk.Step(step) {
		for _, nc := range claims {
			_, _ = h.lc.Reconcile(h.ctx, nc.Name)
		}
		// Let the caches see what this round wrote.
		time.Sleep(20 * time.Millisecond)
	}
}

// pool reconciles the NodePool's status and returns its condition.
func (h *backoffHarness) pool(t *testing.T, name, conditionType string) *metav1.Condition {
	t.Helper()
	var c *metav1.Condition
	nct.Eventually(t, 10*time.Second, "nodepool "+name+" status", func() bool {
		if _, err := h.status.Reconcile(h.ctx, name); err != nil {
			return false
		}
		np, err := h.e.Karp.KarpenterV1().NodePools().Get(h.e.Ctx, name, metav1.GetOptions{})
		if err != nil {
			return false
		}
		c = np.GetCondition(conditionType)
		return c != nil
	})
	return c
}

// waitingPod is a pod nominated to the claim's node, as the Provisioner
// leaves it.
func (h *backoffHarness) waitingPod(t *testing.T, name, claim string) *v1.Pod {
	t.Helper()
	pod := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name}, Spec: v1.PodSpec{Containers: []v1.Container{{
		Name: "c", Image: "registry.k8s.io/pause:3.10",
		Resources: v1.ResourceRequirements{Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse("500m")}}}}}}
	created, err := h.e.Kube.CoreV1().Pods("default").Create(h.e.Ctx, pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	created.Status.NominatedNodeName = claim
	if _, err := h.e.Kube.CoreV1().Pods("default").UpdateStatus(h.e.Ctx, created, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	nct.Eventually(t, 10*time.Second, "the pod's nomination in the cache", func() bool {
		objs, _ := h.lc.Pods.ByIndex(lifecycle.NominatedIndex, claim)
		return len(objs) == 1
	})
	return created
}

// TestLaunchFailuresBackOff: a vCPU quota error answered by CreateFleet
// itself (no offering named) holds the NodePool's standard on-demand
// launches back 30s, 1m, 2m, 4m: three claims reconciled every five
// seconds for five minutes make four CreateFleet calls, not one per claim
// per reconcile. The claim, the pod waiting for it and the NodePool say
// why, with the quota to look at; when the quota is raised the next probe
// launches and the rest follow. Permissions and bad parameters are told
// apart the same way.
func TestLaunchFailuresBackOff(t *testing.T) {
	h := newBackoffHarness(t)
	e := h.e

	t.Run("vCPU quota", func(t *testing.T) {
		e.CreatePool(t, nct.Pool{Name: "quota", Requirements: []karpv1.NodeSelectorRequirementWithMinValues{nct.OnDemand}})
		quota := awsfault.APIError("CreateFleet", 0, http.StatusBadRequest, "VcpuLimitExceeded",
			"You have requested more vCPU capacity than your current vCPU limit of 32 allows for the instance bucket that the specified instance type belongs to.")
		h.proxy.Add(quota)
		claims := []*karpv1.NodeClaim{
			h.op.CreateClaim(t, e, "quota", "t3.medium", "m5.large"),
			h.op.CreateClaim(t, e, "quota", "t3.medium"),
			h.op.CreateClaim(t, e, "quota", "m5.large"),
		}
		pod := h.waitingPod(t, "quota-pod", claims[0].Name)
		before := h.proxy.Calls("CreateFleet")
		h.reconcile(t, 5*time.Minute, 5*time.Second, claims...)
		calls := h.proxy.Calls("CreateFleet") - before
		t.Logf("CreateFleet calls in 5 minutes of 3 claims reconciled every 5s: %d", calls)
		if calls < 4 || calls > 5 {
			t.Errorf("%d CreateFleet calls in 5 minutes, want 4 (at 0s, 30s, 1m30s, 3m30s)", calls)
		}

		nc := e.Claim(t, claims[0].Name)
		launched := nc.GetCondition(karpv1.ConditionTypeLaunched)
		if launched == nil || launched.Status != metav1.ConditionFalse || launched.Reason != ec2.ReasonVcpuLimitExceeded ||
			!strings.Contains(launched.Message, "held back until") {
			t.Errorf("claim Launched = %+v, want False VcpuLimitExceeded saying until when", launched)
		}
		if n := cloudprovider.LaunchAttempt(nc); n < 1 {
			t.Errorf("launch attempt %d after answered failures: the next CreateFleet would replay the failure on AWS", n)
		}
		note := e.WaitEvent(t, pod.Name, ec2.ReasonVcpuLimitExceeded)
		if !strings.Contains(note, "NodeClaim "+claims[0].Name) || !strings.Contains(note, "vCPU limit") {
			t.Errorf("pod event %q does not say which claim and why", note)
		}
		c := h.pool(t, "quota", status.ConditionTypeLaunchable)
		if c.Status != metav1.ConditionFalse || c.Reason != ec2.ReasonVcpuLimitExceeded || !strings.Contains(c.Message, "L-1216C47A") ||
			!strings.Contains(c.Message, "standard on-demand instances are held back until") {
			t.Errorf("nodepool Launchable = %+v", c)
		}
		if note := e.WaitEvent(t, "quota", ec2.ReasonVcpuLimitExceeded); !strings.Contains(note, "quota") {
			t.Errorf("nodepool event %q", note)
		}
		m := metrics.CloudProviderErrors.WithLabelValues(lifecycle.Name, "Create", "aws", ec2.ReasonVcpuLimitExceeded)
		if v, err := testutil.GetCounterMetricValue(m); err != nil || v < 4 {
			t.Errorf("karpenter_cloudprovider_errors_total{error=VcpuLimitExceeded} = %v (%v), want at least 4", v, err)
		}

		// The quota is raised: the next probe launches, the rest follow.
		h.proxy.Remove(quota)
		h.reconcile(t, 5*time.Minute, 10*time.Second, claims...)
		for _, nc := range claims {
			e.WaitLaunched(t, nc.Name)
			if got := e.LiveInstances(t, nc.Name); len(got) != 1 {
				t.Errorf("%s: instances %+v, want one", nc.Name, got)
			}
		}
		if c := h.pool(t, "quota", status.ConditionTypeLaunchable); c.Status != metav1.ConditionTrue {
			t.Errorf("nodepool Launchable = %+v after launches succeeded", c)
		}
	})

	for _, tc := range []struct {
		pool, code, reason string
		status             int
	}{
		{"denied", "UnauthorizedOperation", ec2.ReasonUnauthorized, http.StatusForbidden},
		{"invalid", "InvalidParameterValue", ec2.ReasonInvalidParameter, http.StatusBadRequest},
	} {
		t.Run(tc.reason, func(t *testing.T) {
			e.CreatePool(t, nct.Pool{Name: tc.pool, Requirements: []karpv1.NodeSelectorRequirementWithMinValues{nct.OnDemand}})
			fault := awsfault.APIError("CreateFleet", 0, tc.status, tc.code, tc.code+" from the proxy")
			h.proxy.Add(fault)
			defer h.proxy.Remove(fault)
			nc := h.op.CreateClaim(t, e, tc.pool, "t3.medium")
			before := h.proxy.Calls("CreateFleet")
			h.reconcile(t, time.Minute, 5*time.Second, nc)
			if calls := h.proxy.Calls("CreateFleet") - before; calls > 2 {
				t.Errorf("%d CreateFleet calls in a minute, want at most 2 (at 0s and 30s)", calls)
			}
			if c := e.Claim(t, nc.Name).GetCondition(karpv1.ConditionTypeLaunched); c == nil || c.Reason != tc.reason {
				t.Errorf("claim Launched = %+v, want reason %s", c, tc.reason)
			}
			if c := h.pool(t, tc.pool, status.ConditionTypeLaunchable); c.Status != metav1.ConditionFalse || c.Reason != tc.reason ||
				!strings.Contains(c.Message, tc.code) {
				t.Errorf("nodepool Launchable = %+v, want False %s naming %s", c, tc.reason, tc.code)
			}
		})
	}
}
