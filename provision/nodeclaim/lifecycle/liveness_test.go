package lifecycle_test

import (
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilrand "k8s.io/apimachinery/pkg/util/rand"

	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/nodepool"
	"github.com/fleet-scheduler/fleet-scheduler/provision/packing"
	nct "github.com/fleet-scheduler/fleet-scheduler/test/nodeclaimtest"
)

// TestLiveness: with a 3s registration TTL, a launched claim whose Node
// never registers is deleted and its instance terminated; one whose Node
// registers in time stays; one that cannot be launched is deleted too.
func TestLiveness(t *testing.T) {
	const ttl = 3 * time.Second
	e := nct.Start(t)
	op := e.StartOperator(t, nct.OperatorOptions{RegistrationTTL: ttl})
	e.CreatePool(t, nct.Pool{Name: "live", Requirements: []karpv1.NodeSelectorRequirementWithMinValues{nct.OnDemand}})
	const foreignID = "aws:///us-east-1a/i-0fedcba9876543210"

	t.Run("never launches", func(t *testing.T) {
		// Its EC2NodeClass does not exist: every launch attempt fails.
		np := e.CreatePool(t, nct.Pool{Name: "live-noclass", NodeClass: "missing", Requirements: []karpv1.NodeSelectorRequirementWithMinValues{nct.OnDemand}})
		nc := nodepool.NewNodeClaim(np, packing.ClaimSpec{Name: np.Name + "-" + utilrand.String(5), NodePool: np.Name, Options: op.Options(t, "live", "t3.medium")})
		nc, err := e.Karp.KarpenterV1().NodeClaims().Create(e.Ctx, nc, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		e.WaitClaimGone(t, nc.Name, 30*time.Second)
		if gone := time.Since(nc.CreationTimestamp.Time); gone < ttl-time.Second {
			t.Errorf("claim deleted %s after creation, before the %s TTL", gone, ttl)
		}
		if note := e.WaitEvent(t, nc.Name, "LaunchTimeout"); !strings.Contains(note, "missing") {
			t.Errorf("LaunchTimeout event %q does not say why the launch failed", note)
		}
	})

	for _, tc := range []struct {
		name string
		// node registers (or not) right after launch.
		node     func(t *testing.T, claim string)
		deleted  bool
		keepNode bool
	}{{
		name:    "no node",
		deleted: true,
	}, {
		name: "only another machine's node of that name",
		node: func(t *testing.T, claim string) {
			e.RegisterNode(t, claim, func(n *v1.Node) { n.Spec.ProviderID = foreignID })
		},
		deleted: true,
		// It is not the claim's to delete.
		keepNode: true,
	}, {
		name: "node registers in time",
		node: func(t *testing.T, claim string) { e.RegisterNode(t, claim, nil) },
	}} {
		t.Run(tc.name, func(t *testing.T) {
			nc := e.WaitLaunched(t, op.CreateClaim(t, e, "live", "t3.medium").Name)
			launchedAt := nc.GetCondition(karpv1.ConditionTypeLaunched).LastTransitionTime.Time
			inst := e.LiveInstances(t, nc.Name)
			if len(inst) != 1 {
				t.Fatalf("live instances %+v, want one", inst)
			}
			if tc.node != nil {
				tc.node(t, nc.Name)
			}
			if !tc.deleted {
				nct.Never(t, 2*ttl, "the claim deleted though its node registered", func() bool {
					_, err := e.Karp.KarpenterV1().NodeClaims().Get(e.Ctx, nc.Name, metav1.GetOptions{})
					return apierrors.IsNotFound(err)
				})
				if got := e.LiveInstances(t, nc.Name); len(got) != 1 {
					t.Errorf("live instances %+v, want the one", got)
				}
				return
			}
			e.WaitClaimGone(t, nc.Name, 30*time.Second)
			// Launched's transition time has a one-second resolution.
			if gone := time.Since(launchedAt); gone < ttl-time.Second {
				t.Errorf("claim deleted %s after launch, before the %s TTL", gone, ttl)
			}
			note := e.WaitEvent(t, nc.Name, "RegistrationTimeout")
			if !strings.Contains(note, ttl.String()) {
				t.Errorf("RegistrationTimeout event %q does not name the TTL", note)
			}
			e.CheckMachineGone(t, nc.Name, "after the claim was given up")
			if s := e.TokenSecrets(t, nc.Name); len(s) != 0 {
				t.Errorf("bootstrap token Secrets outlived the claim: %v", s)
			}
			_, err := e.Kube.CoreV1().Nodes().Get(e.Ctx, nc.Name, metav1.GetOptions{})
			if tc.keepNode && err != nil {
				t.Errorf("another machine's node was deleted with the claim: %v", err)
			}
		})
	}
}
