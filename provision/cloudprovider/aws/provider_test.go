package aws_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	utilrand "k8s.io/apimachinery/pkg/util/rand"

	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/bootstrap"
	"github.com/fleet-scheduler/fleet-scheduler/provision/cloudprovider"
	"github.com/fleet-scheduler/fleet-scheduler/provision/cloudprovider/aws"
	"github.com/fleet-scheduler/fleet-scheduler/provision/ec2"
	"github.com/fleet-scheduler/fleet-scheduler/provision/nodepool"
	"github.com/fleet-scheduler/fleet-scheduler/provision/packing"
	nct "github.com/fleet-scheduler/fleet-scheduler/test/nodeclaimtest"
)

// TestProvider calls the EC2 cloud provider of a real operator directly.
// The claims are built with nodepool.NewNodeClaim like the plugin's but
// never stored, so the operator's own controllers leave them alone; the
// operator's AWS calls go through a proxy that can fail CreateFleet.
func TestProvider(t *testing.T) {
	e := nct.Start(t)
	op, proxy := e.StartOperatorBehindProxy(t, nct.OperatorOptions{})
	h := &harness{e: e, op: op, proxy: proxy}
	e.CreatePool(t, nct.Pool{Name: "cp", Labels: map[string]string{"managed-by": "karpenter"}, Requirements: []karpv1.NodeSelectorRequirementWithMinValues{
		nct.OnDemand, nct.Req("team", v1.NodeSelectorOpIn, "scan"),
	}})
	e.CreatePool(t, nct.Pool{Name: "cp-noclass", NodeClass: "missing", Requirements: []karpv1.NodeSelectorRequirementWithMinValues{nct.OnDemand}})
	e.CreatePool(t, nct.Pool{Name: "both", Requirements: []karpv1.NodeSelectorRequirementWithMinValues{
		nct.Req(karpv1.CapacityTypeLabelKey, v1.NodeSelectorOpIn, karpv1.CapacityTypeSpot, karpv1.CapacityTypeOnDemand)}})
	e.CreatePool(t, nct.Pool{Name: "spot-only", Requirements: []karpv1.NodeSelectorRequirementWithMinValues{
		nct.Req(karpv1.CapacityTypeLabelKey, v1.NodeSelectorOpIn, karpv1.CapacityTypeSpot)}})

	t.Run("Create", h.create)
	t.Run("CreateIsIdempotent", h.createIdempotent)
	t.Run("GetListDelete", h.getListDelete)
	t.Run("DeleteDuringCreate", h.deleteDuringCreate)
	t.Run("DeleteUnlisted", h.deleteUnlisted)
	t.Run("DeleteLeftovers", h.deleteLeftovers)
	t.Run("Errors", h.errors)
	t.Run("SpotPricedBelowOnDemand", h.spotPriced)
	t.Run("SpotFallsBackToOnDemand", h.spotFallback)
}

type harness struct {
	e     *nct.Env
	op    *nct.Operator
	proxy *nct.Proxy
}

// claim is a NodeClaim of the pool as the plugin would create it, with the
// UID the apiserver would give it.
func (h *harness) claim(t *testing.T, pool string, instanceTypes ...string) *karpv1.NodeClaim {
	t.Helper()
	np, err := h.e.Karp.KarpenterV1().NodePools().Get(h.e.Ctx, pool, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	optionsPool := pool
	if pool == "cp-noclass" {
		optionsPool = "cp" // it has none of its own
	}
	nc := nodepool.NewNodeClaim(np, packing.ClaimSpec{
		Name: pool + "-" + utilrand.String(5), NodePool: pool, Options: h.op.Options(t, optionsPool, instanceTypes...),
	})
	nc.UID = types.UID(uuid.NewString())
	return nc
}

func (h *harness) create(t *testing.T) {
	e := h.e
	for _, tc := range []struct {
		name          string
		instanceTypes []string
		wantType      string
	}{
		{name: "one type", instanceTypes: []string{"t3.medium"}, wantType: "t3.medium"},
		{name: "cheapest first", instanceTypes: []string{"m5.2xlarge", "t3.large", "m5.large"}, wantType: "t3.large"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nc := h.claim(t, "cp", tc.instanceTypes...)
			got, err := h.op.Cloud.Create(e.Ctx, nc)
			if err != nil {
				t.Fatal(err)
			}
			live := e.LiveInstances(t, nc.Name)
			if len(live) != 1 {
				t.Fatalf("live instances %+v, want one", live)
			}
			inst := live[0]
			if inst.Type != tc.wantType {
				t.Errorf("launched %s, want %s", inst.Type, tc.wantType)
			}
			if want := ec2.FormatProviderID(inst.Zone, inst.ID); got.Status.ProviderID != want {
				t.Errorf("providerID %q, want %q", got.Status.ProviderID, want)
			}
			if got.Status.ImageID != e.World.ImageID {
				t.Errorf("imageID %q, want %q", got.Status.ImageID, e.World.ImageID)
			}
			if got.Status.Capacity.Cpu().IsZero() || got.Status.Allocatable.Memory().IsZero() {
				t.Errorf("capacity %v allocatable %v", got.Status.Capacity, got.Status.Allocatable)
			}
			for k, v := range map[string]string{
				v1.LabelInstanceTypeStable: inst.Type, v1.LabelTopologyZone: inst.Zone, karpv1.CapacityTypeLabelKey: "on-demand",
				v1.LabelArchStable: "amd64", karpv1.NodePoolLabelKey: "cp", "managed-by": "karpenter", "team": "scan",
			} {
				if got.Labels[k] != v {
					t.Errorf("label %s = %q, want %q", k, got.Labels[k], v)
				}
			}
			if nc.Status.ProviderID != "" || nc.Labels[v1.LabelInstanceTypeStable] != "" {
				t.Errorf("Create changed the claim it was given")
			}
			if inst.Tags[karpv1.NodeClaimTagKey] != nc.Name || inst.Tags["kubernetes.io/cluster/"+nct.ClusterName] != "owned" {
				t.Errorf("instance tags %v", inst.Tags)
			}
			join := e.Join(t, nc.Name)
			if join.NodeName != nc.Name || join.Labels["managed-by"] != "karpenter" || join.Validate() != nil {
				t.Errorf("user data joins as %v", join)
			}
			// The token's ID, never its secret, is on the claim and the
			// instance: what revocation deletes by name.
			secrets, ids := e.TokenSecrets(t, nc.Name), bootstrap.TokenIDs(got.Annotations)
			if len(secrets) != 1 || len(ids) != 1 || secrets[0] != "bootstrap-token-"+ids[0] || inst.Tags[aws.TagBootstrapTokenID] != ids[0] {
				t.Errorf("bootstrap tokens for %s: %v; IDs on the claim %v; instance tag %q: want one, named alike", nc.Name, secrets, ids, inst.Tags[aws.TagBootstrapTokenID])
			}
			if strings.Contains(got.Annotations[bootstrap.AnnotationTokenIDs], ".") {
				t.Errorf("the claim carries more than token IDs: %v", got.Annotations)
			}
		})
	}
}

// createIdempotent: Create again for a claim whose machine exists (a retry
// after a crash between CreateFleet and the status write), in sequence or
// at the same moment, returns that machine and launches nothing.
func (h *harness) createIdempotent(t *testing.T) {
	e := h.e
	for _, tc := range []struct {
		name       string
		concurrent bool
	}{{name: "sequential"}, {name: "concurrent", concurrent: true}} {
		t.Run(tc.name, func(t *testing.T) {
			nc := h.claim(t, "cp", "t3.medium", "t3.large")
			fleets := h.proxy.Calls("CreateFleet")
			results := make([]*karpv1.NodeClaim, 3)
			errs := make([]error, 3)
			var wg sync.WaitGroup
			for i := range results {
				run := func() { results[i], errs[i] = h.op.Cloud.Create(e.Ctx, nc.DeepCopy()) }
				if !tc.concurrent {
					run()
					continue
				}
				wg.Add(1)
				go func() { defer wg.Done(); run() }()
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Fatalf("Create #%d: %v", i, err)
				}
				if results[i].Status.ProviderID != results[0].Status.ProviderID ||
					results[i].Labels[v1.LabelInstanceTypeStable] != results[0].Labels[v1.LabelInstanceTypeStable] {
					t.Errorf("Create #%d returned %s %s, #0 %s %s", i, results[i].Status.ProviderID, results[i].Labels[v1.LabelInstanceTypeStable],
						results[0].Status.ProviderID, results[0].Labels[v1.LabelInstanceTypeStable])
				}
			}
			if all := e.ClaimInstances(t, nc.Name); len(all) != 1 {
				t.Fatalf("instances tagged with the claim: %+v, want one", all)
			}
			if got := h.proxy.Calls("CreateFleet") - fleets; got != 1 {
				t.Errorf("CreateFleet called %d times, want once", got)
			}
			// Only the first attempt minted: the others reused its launch
			// template, and record its token.
			if s := e.TokenSecrets(t, nc.Name); len(s) != 1 {
				t.Errorf("bootstrap tokens %v, want the one reused", s)
			}
			for i := range results {
				if ids := bootstrap.TokenIDs(results[i].Annotations); len(ids) != 1 || ids[0] != bootstrap.TokenIDs(results[0].Annotations)[0] {
					t.Errorf("Create #%d records tokens %v, #0 %v", i, ids, bootstrap.TokenIDs(results[0].Annotations))
				}
			}
		})
	}
}

func (h *harness) getListDelete(t *testing.T) {
	e := h.e
	ctx := e.Ctx
	nc := h.claim(t, "cp", "t3.medium")
	created, err := h.op.Cloud.Create(ctx, nc)
	if err != nil {
		t.Fatal(err)
	}
	m, err := h.op.Cloud.Get(ctx, created.Status.ProviderID)
	if err != nil {
		t.Fatal(err)
	}
	if m.ProviderID != created.Status.ProviderID || m.NodeClaim != nc.Name || (m.State != "running" && m.State != "pending") {
		t.Errorf("Get = %+v", m)
	}
	// Where it was launched, for subnet drift. (moto launches fleet
	// instances without the launch template's security groups, so those
	// are not checked here.)
	if !slices.Contains(e.World.SubnetIDs, m.SubnetID) {
		t.Errorf("Get: subnet %q, want one of %v", m.SubnetID, e.World.SubnetIDs)
	}
	if !listed(t, h, created.Status.ProviderID) {
		t.Errorf("List lacks %s", created.Status.ProviderID)
	}
	if _, err := h.op.Cloud.Get(ctx, "aws:///us-east-1a/i-00000000000000000"); !cloudprovider.IsNotFound(err) {
		t.Errorf("Get of an unknown instance: %v, want NotFoundError", err)
	}
	if _, err := h.op.Cloud.Get(ctx, "gce://project/zone/name"); err == nil {
		t.Errorf("Get of another cloud's provider ID succeeded")
	}

	// Delete is what termination calls; twice (a retried termination) is fine.
	for i := 0; i < 2; i++ {
		if err := h.op.Cloud.Delete(ctx, created); err != nil {
			t.Fatalf("Delete #%d: %v", i, err)
		}
	}
	e.CheckMachineGone(t, nc.Name, "after Delete")
	if s := e.TokenSecrets(t, nc.Name); len(s) != 0 {
		t.Errorf("bootstrap tokens left after Delete: %v", s)
	}
	if m, err := h.op.Cloud.Get(ctx, created.Status.ProviderID); err == nil && !nct.Gone(m.State) {
		t.Errorf("Get after Delete = %+v", m)
	}
	if listed(t, h, created.Status.ProviderID) {
		if m, _ := h.op.Cloud.Get(ctx, created.Status.ProviderID); m == nil || m.State != "shutting-down" {
			t.Errorf("List still has the terminated %s", created.Status.ProviderID)
		}
	}

	for _, tc := range []struct {
		name       string
		providerID string
	}{
		// A launch that died before writing the status: only the tag knows.
		{name: "no provider ID in the status"},
		{name: "an unparsable provider ID in the status", providerID: "i-0123456789"},
	} {
		t.Run("Delete with "+tc.name, func(t *testing.T) {
			nc := h.claim(t, "cp", "t3.medium")
			e.LaunchTagged(t, h.op, nc)
			nc.Status.ProviderID = tc.providerID
			if err := h.op.Cloud.Delete(ctx, nc); err != nil {
				t.Fatal(err)
			}
			e.CheckMachineGone(t, nc.Name, "after Delete")
		})
	}
}

// deleteDuringCreate: termination's Delete arrives while the claim's launch
// is still waiting for CreateFleet's answer. It must not finish before the
// launch does (it would find no instance and release the claim, and the
// instance launched a moment later would belong to nobody).
func (h *harness) deleteDuringCreate(t *testing.T) {
	e := h.e
	nc := h.claim(t, "cp", "t3.medium")
	release := h.proxy.HoldFleet()
	defer h.proxy.Pass()
	defer release()
	created := make(chan error, 1)
	go func() { _, err := h.op.Cloud.Create(e.Ctx, nc); created <- err }()
	select {
	case <-h.proxy.Launched():
	case <-time.After(30 * time.Second):
		t.Fatal("CreateFleet never reached moto")
	}
	deleted := make(chan error, 1)
	go func() { deleted <- h.op.Cloud.Delete(e.Ctx, nc) }()
	select {
	case err := <-deleted:
		t.Fatalf("Delete returned (%v) while the launch was in flight", err)
	case <-time.After(500 * time.Millisecond):
	}
	release()
	if err := <-created; err != nil {
		t.Fatalf("Create: %v", err)
	}
	if err := <-deleted; err != nil {
		t.Fatalf("Delete: %v", err)
	}
	all := e.ClaimInstances(t, nc.Name)
	if len(all) != 1 || !nct.Gone(all[0].State) {
		t.Errorf("instances of the claim after Delete: %+v, want the one launched, terminated", all)
	}
	if e.LaunchTemplateExists(t, nc.Name) || len(e.TokenSecrets(t, nc.Name)) != 0 {
		t.Errorf("launch template or token left after Delete")
	}
}

// deleteUnlisted: Delete right after Create, while EC2 does not list the
// new instance by its tags yet and the claim's status was never written
// (termination of a claim deleted as its launch returned).
func (h *harness) deleteUnlisted(t *testing.T) {
	e := h.e
	nc := h.claim(t, "cp", "t3.medium")
	if _, err := h.op.Cloud.Create(e.Ctx, nc); err != nil {
		t.Fatal(err)
	}
	h.proxy.HideTagged(true)
	defer h.proxy.HideTagged(false)
	if err := h.op.Cloud.Delete(e.Ctx, nc); err != nil {
		t.Fatal(err)
	}
	all := e.ClaimInstances(t, nc.Name)
	if len(all) != 1 || !nct.Gone(all[0].State) {
		t.Errorf("instances of the claim after Delete: %+v, want the one launched, terminated", all)
	}
}

// deleteLeftovers: a claim gone with its instance but not its launch
// template (removed without its finalizer). Garbage collection deletes the
// template and revokes the token its tag names, which nothing else names
// any more.
func (h *harness) deleteLeftovers(t *testing.T) {
	e := h.e
	nc := h.claim(t, "cp", "t3.medium")
	created, err := h.op.Cloud.Create(e.Ctx, nc)
	if err != nil {
		t.Fatal(err)
	}
	if len(e.TokenSecrets(t, nc.Name)) != 1 {
		t.Fatalf("bootstrap tokens for %s: %v, want one", nc.Name, e.TokenSecrets(t, nc.Name))
	}
	var collector cloudprovider.Collector = h.op.Cloud
	if err := collector.Terminate(e.Ctx, created.Status.ProviderID); err != nil {
		t.Fatal(err)
	}
	leftovers, err := collector.Leftovers(e.Ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := leftovers[nc.Name]; !ok {
		t.Fatalf("Leftovers %v does not name %s", leftovers, nc.Name)
	}
	// Twice: a second pass finds nothing and is no error.
	for i := 0; i < 2; i++ {
		if err := collector.DeleteLeftovers(e.Ctx, nc.Name); err != nil {
			t.Fatalf("DeleteLeftovers #%d: %v", i, err)
		}
	}
	if e.LaunchTemplateExists(t, nc.Name) {
		t.Errorf("launch template left after DeleteLeftovers")
	}
	if s := e.TokenSecrets(t, nc.Name); len(s) != 0 {
		t.Errorf("bootstrap tokens left after DeleteLeftovers: %v", s)
	}
}

func listed(t *testing.T, h *harness, providerID string) bool {
	t.Helper()
	machines, err := h.op.Cloud.List(h.e.Ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range machines {
		if m.ProviderID == providerID {
			return true
		}
	}
	return false
}

func (h *harness) errors(t *testing.T) {
	e := h.e
	for _, tc := range []struct {
		name  string
		claim func(t *testing.T) *karpv1.NodeClaim
		// fleet is the EC2 Fleet error code every override fails with; none
		// when empty.
		fleet string
		check func(error) bool
		// fleetCalls is how many CreateFleet calls the attempt makes.
		fleetCalls int
		// unavailable are instance types marked unavailable afterwards.
		unavailable []string
	}{{
		name:  "node class missing",
		claim: func(t *testing.T) *karpv1.NodeClaim { return h.claim(t, "cp-noclass", "t3.medium") },
		check: cloudprovider.IsNodeClassNotReady,
	}, {
		name: "nodepool missing",
		claim: func(t *testing.T) *karpv1.NodeClaim {
			nc := h.claim(t, "cp", "t3.medium")
			nc.Labels[karpv1.NodePoolLabelKey] = "deleted-pool"
			return nc
		},
		check: cloudprovider.IsNodeClassNotReady,
	}, {
		name:        "no capacity for any offering",
		claim:       func(t *testing.T) *karpv1.NodeClaim { return h.claim(t, "cp", "c5.large", "c6i.large") },
		fleet:       "InsufficientInstanceCapacity",
		check:       cloudprovider.IsInsufficientCapacity,
		fleetCalls:  1,
		unavailable: []string{"c5.large", "c6i.large"},
	}, {
		// The claim stays and waits: its pool's standard on-demand
		// launches are held back.
		name:  "vCPU quota",
		claim: func(t *testing.T) *karpv1.NodeClaim { return h.claim(t, "cp", "c5.xlarge") },
		fleet: "VcpuLimitExceeded",
		check: func(err error) bool {
			le := cloudprovider.AsLaunchError(err)
			return le != nil && le.Reason == ec2.ReasonVcpuLimitExceeded && le.Answered && le.RetryAfter == 30*time.Second &&
				strings.Contains(err.Error(), "L-1216C47A")
		},
		fleetCalls:  1,
		unavailable: []string{"c5.xlarge"},
	}, {
		// Every offering of the claim is marked unavailable by now: the
		// launch fails without asking EC2.
		name: "every offering already unavailable",
		claim: func(t *testing.T) *karpv1.NodeClaim {
			nc := h.claim(t, "cp", "t3a.nano")
			for _, z := range []string{"a", "b", "c"} {
				h.op.Catalog.MarkUnavailable("t3a.nano", "us-east-1"+z, karpv1.CapacityTypeOnDemand, 10*time.Minute)
			}
			return nc
		},
		check: cloudprovider.IsInsufficientCapacity,
	}, {
		name:       "invalid launch (not a capacity problem)",
		claim:      func(t *testing.T) *karpv1.NodeClaim { return h.claim(t, "cp", "m5.large") },
		fleet:      "InvalidParameterValue",
		fleetCalls: 1,
		check: func(err error) bool {
			return err != nil && !cloudprovider.IsInsufficientCapacity(err) && !cloudprovider.IsNodeClassNotReady(err) &&
				strings.Contains(err.Error(), "InvalidParameterValue") && cloudprovider.Reason(err) == ec2.ReasonInvalidParameter
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			defer h.op.Health.Forget("cp") // each case starts with no backoff
			nc := tc.claim(t)
			if tc.fleet != "" {
				h.proxy.FailFleet(tc.fleet)
				defer h.proxy.Pass()
			}
			fleets := h.proxy.Calls("CreateFleet")
			_, err := h.op.Cloud.Create(context.Background(), nc)
			if !tc.check(err) {
				t.Fatalf("Create: %T %v", err, err)
			}
			if got := h.proxy.Calls("CreateFleet") - fleets; got != tc.fleetCalls {
				t.Errorf("CreateFleet called %d times, want %d", got, tc.fleetCalls)
			}
			if got := e.ClaimInstances(t, nc.Name); len(got) != 0 {
				t.Errorf("instances after a failed launch: %+v", got)
			}
			for _, o := range unavailableAfter(t, h, tc.unavailable) {
				t.Errorf("%s still offered after EC2 refused it", o)
			}
			// A token outlives a failed launch only in the launch template
			// the next attempt reuses.
			if template, tokens := e.LaunchTemplateExists(t, nc.Name), len(e.TokenSecrets(t, nc.Name)); template && tokens != 1 || !template && tokens != 0 {
				t.Errorf("after the failed launch: launch template %v, %d bootstrap tokens", template, tokens)
			}
			// What termination does for a claim given up.
			if err := h.op.Cloud.Delete(e.Ctx, nc); err != nil {
				t.Fatalf("Delete after a failed launch: %v", err)
			}
			if e.LaunchTemplateExists(t, nc.Name) || len(e.TokenSecrets(t, nc.Name)) != 0 {
				t.Errorf("launch template or token left after Delete")
			}
		})
	}
}

// unavailableAfter returns the offerings (in the node class's zones) of the
// types that the pool still offers.
func unavailableAfter(t *testing.T, h *harness, instanceTypes []string) []string {
	t.Helper()
	if len(instanceTypes) == 0 {
		return nil
	}
	var out []string
	for _, p := range h.op.Source.Pools() {
		if p.Name != "cp" {
			continue
		}
		for _, o := range p.Options {
			for _, it := range instanceTypes {
				if o.InstanceType == it && o.CapacityType == karpv1.CapacityTypeOnDemand {
					out = append(out, o.InstanceType+" in "+o.Zone)
				}
			}
		}
	}
	return out
}
