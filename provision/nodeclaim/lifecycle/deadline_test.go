package lifecycle_test

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/ec2"
	"github.com/fleet-scheduler/fleet-scheduler/provision/operator"
	nct "github.com/fleet-scheduler/fleet-scheduler/test/nodeclaimtest"
)

// TestHungCalls: CreateFleet calls that are accepted and never answered
// occupy every lifecycle worker. Each fails at its deadline with the call
// named on the claim, the workers go on to other claims, a deletion of a
// claim whose launch hangs is not held up by it, and every claim ends
// with exactly one instance.
func TestHungCalls(t *testing.T) {
	const deadline = 3 * time.Second
	e := nct.Start(t)
	op, proxy := e.StartOperatorBehindProxy(t, nct.OperatorOptions{
		CallTimeouts: ec2.CallTimeouts{PerCall: map[string]time.Duration{"CreateFleet": deadline}}})
	e.CreatePool(t, nct.Pool{Name: "hung", Requirements: []karpv1.NodeSelectorRequirementWithMinValues{nct.OnDemand}})
	arrived := func(n int) {
		t.Helper()
		for range n {
			select {
			case <-proxy.Launched():
			case <-time.After(60 * time.Second):
				t.Fatal("CreateFleet never reached the proxy")
			}
		}
	}

	t.Run("hung launches on every worker do not stop the next", func(t *testing.T) {
		workers := operator.LifecycleWorkers
		proxy.BlackholeFleet(workers)
		t.Cleanup(proxy.Pass)
		var hung []*karpv1.NodeClaim
		for range workers {
			hung = append(hung, op.CreateClaim(t, e, "hung", "t3.medium"))
		}
		arrived(workers) // every worker is inside CreateFleet now
		began := time.Now()
		c := op.CreateClaim(t, e, "hung", "t3.medium")
		e.WaitLaunched(t, c.Name)
		t.Logf("the next claim launched %s after %d CreateFleet calls hung (deadline %s)", time.Since(began).Round(time.Millisecond), workers, deadline)
		for _, nc := range hung {
			note := e.WaitEvent(t, nc.Name, ec2.ReasonCallTimeout)
			if !strings.Contains(note, "CreateFleet did not answer within "+deadline.String()) {
				t.Errorf("%s: event %q does not name the hung call and its deadline", nc.Name, note)
			}
			e.WaitLaunched(t, nc.Name)
		}
		for _, nc := range append(hung, c) {
			if got := e.ClaimInstances(t, nc.Name); len(got) != 1 {
				t.Errorf("%s: instances %+v, want exactly one", nc.Name, got)
			}
		}
	})

	t.Run("a launch hung after EC2 acted is retried without a second instance", func(t *testing.T) {
		proxy.HangFleet()
		t.Cleanup(proxy.Pass)
		nc := op.CreateClaim(t, e, "hung", "t3.medium")
		arrived(1)
		e.WaitEvent(t, nc.Name, ec2.ReasonCallTimeout)
		proxy.Pass()
		e.WaitLaunched(t, nc.Name)
		if got := e.ClaimInstances(t, nc.Name); len(got) != 1 {
			t.Errorf("instances %+v, want the one the hung call launched", got)
		}
	})

	t.Run("a claim deleted while its launch hangs goes", func(t *testing.T) {
		proxy.BlackholeFleet(0)
		t.Cleanup(proxy.Pass)
		nc := op.CreateClaim(t, e, "hung", "t3.medium")
		arrived(1)
		began := time.Now()
		if err := e.Karp.KarpenterV1().NodeClaims().Delete(e.Ctx, nc.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		e.WaitClaimGone(t, nc.Name, 60*time.Second)
		t.Logf("deleted %s after its CreateFleet hung", time.Since(began).Round(time.Millisecond))
		if got := e.LiveInstances(t, nc.Name); len(got) != 0 {
			t.Errorf("instances of the deleted claim: %+v", got)
		}
		if e.LaunchTemplateExists(t, nc.Name) {
			t.Error("the deleted claim's launch template is left")
		}
	})
}
