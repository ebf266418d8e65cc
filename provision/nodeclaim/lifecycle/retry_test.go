package lifecycle_test

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/ec2"
	nct "github.com/fleet-scheduler/fleet-scheduler/test/nodeclaimtest"
)

// TestRetriedLaunch: a launch that dies after CreateFleet and before the
// claim's status is written is retried, by another process or by the same
// controller, without a second instance: the retry finds the instance by
// its claim tag. (moto ignores CreateFleet's ClientToken, so only the tag
// lookup stands between a retry and a second instance here.)
func TestRetriedLaunch(t *testing.T) {
	e := nct.Start(t)
	proxy := nct.StartProxy(t, e.Moto.Endpoint)
	e.CreatePool(t, nct.Pool{Name: "retry", Requirements: []karpv1.NodeSelectorRequirementWithMinValues{nct.OnDemand}})

	// The first operator's CreateFleet reaches moto, which launches, and
	// its answer never comes back; then the operator stops, as a crashed
	// process would.
	crashing := e.StartOperator(t, nct.OperatorOptions{AWSEndpoint: proxy.URL})
	proxy.HangFleet()
	nc := crashing.CreateClaim(t, e, "retry", "t3.medium", "t3.large")
	select {
	case <-proxy.Launched():
	case <-time.After(60 * time.Second):
		t.Fatal("CreateFleet never reached moto")
	}
	crashing.Stop()
	if got := e.LiveInstances(t, nc.Name); len(got) != 1 {
		t.Fatalf("instances after the crashed launch: %+v, want one", got)
	}
	if got := e.Claim(t, nc.Name); got.Status.ProviderID != "" || karpv1.IsConditionTrue(got.Status.Conditions, karpv1.ConditionTypeLaunched) {
		t.Fatalf("the crashed launch wrote the status: %+v", got.Status)
	}
	first := e.LiveInstances(t, nc.Name)[0]
	parent := t

	steps := []struct {
		name string
		run  func(t *testing.T)
	}{{
		name: "another operator takes over",
		// It outlives this step: the next one needs it too. Its
		// catalogue is still loading when it sees the claim.
		run: func(*testing.T) { e.StartOperator(parent, nct.OperatorOptions{NoWait: true}) },
	}, {
		name: "status lost and reconciled again",
		run: func(t *testing.T) {
			got := e.Claim(t, nc.Name)
			got.Status = karpv1.NodeClaimStatus{}
			if _, err := e.Karp.KarpenterV1().NodeClaims().UpdateStatus(e.Ctx, got, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
		},
	}}
	for _, step := range steps {
		t.Run(step.name, func(t *testing.T) {
			began := time.Now()
			step.run(t)
			got := e.WaitClaim(t, nc.Name, "launched", func(nc *karpv1.NodeClaim) bool {
				return karpv1.IsConditionTrue(nc.Status.Conditions, karpv1.ConditionTypeLaunched) && nc.Status.ProviderID != ""
			})
			if live := e.LiveInstances(t, nc.Name); len(live) != 1 || live[0].ID != first.ID {
				t.Fatalf("live instances %+v, want only the first launch's %s", live, first.ID)
			}
			if all := e.ClaimInstances(t, nc.Name); len(all) != 1 {
				t.Errorf("instances ever launched for the claim: %+v, want one", all)
			}
			if want := ec2.FormatProviderID(first.Zone, first.ID); got.Status.ProviderID != want {
				t.Errorf("status.providerID %q, want %q", got.Status.ProviderID, want)
			}
			t.Logf("launched again in %s", time.Since(began).Round(time.Millisecond))
			// A restart is not the node class's fault, and must not cost
			// the claim a retry interval.
			if evs := e.Events(t, nc.Name, "NodeClassNotReady"); len(evs) != 0 {
				t.Errorf("NodeClassNotReady while the new operator loaded its catalogue: %s", evs[0].Note)
			}
			if got.Labels["node.kubernetes.io/instance-type"] != first.Type || got.Status.Allocatable.Cpu().IsZero() {
				t.Errorf("claim labels %v allocatable %v do not describe the %s it has", got.Labels, got.Status.Allocatable, first.Type)
			}
		})
	}
}
