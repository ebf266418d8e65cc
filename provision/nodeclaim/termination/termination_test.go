package termination_test

import (
	"slices"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	utilrand "k8s.io/apimachinery/pkg/util/rand"

	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/ec2"
	"github.com/fleet-scheduler/fleet-scheduler/provision/nodepool"
	"github.com/fleet-scheduler/fleet-scheduler/provision/packing"
	nct "github.com/fleet-scheduler/fleet-scheduler/test/nodeclaimtest"
)

// TestTermination deletes NodeClaims the way `kubectl delete nodeclaim`
// does, at every stage of their life, and checks that what was made for
// each goes before the claim does: its Node, its instance, its launch
// template and its minted bootstrap token.
func TestTermination(t *testing.T) {
	e := nct.Start(t)
	op := e.StartOperator(t, nct.OperatorOptions{})
	e.CreatePool(t, nct.Pool{Name: "term", Labels: map[string]string{"managed-by": "karpenter"}, Requirements: []karpv1.NodeSelectorRequirementWithMinValues{nct.OnDemand}})
	// Claims of this pool never launch: its EC2NodeClass does not exist.
	noClass := e.CreatePool(t, nct.Pool{Name: "term-noclass", NodeClass: "missing", Requirements: []karpv1.NodeSelectorRequirementWithMinValues{nct.OnDemand}})
	const foreignID = "aws:///us-east-1b/i-0aaaabbbbccccdddd"

	// neverLaunched is a claim the lifecycle controller cannot launch.
	neverLaunched := func(t *testing.T) *karpv1.NodeClaim {
		nc := nodepool.NewNodeClaim(noClass, packing.ClaimSpec{
			Name: noClass.Name + "-" + utilrand.String(5), NodePool: noClass.Name,
			Options: op.Options(t, "term", "t3.medium"),
		})
		created, err := e.Karp.KarpenterV1().NodeClaims().Create(e.Ctx, nc, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		e.WaitClaim(t, created.Name, "to fail launching", func(nc *karpv1.NodeClaim) bool {
			c := nc.GetCondition(karpv1.ConditionTypeLaunched)
			return c != nil && c.Reason == "NodeClassNotReady"
		})
		return created
	}
	launched := func(t *testing.T) *karpv1.NodeClaim {
		return e.WaitLaunched(t, op.CreateClaim(t, e, "term", "t3.medium").Name)
	}
	// registered registers the claim's Node and waits for it to initialize;
	// registration puts the termination finalizer on the Node.
	registered := func(t *testing.T, nc *karpv1.NodeClaim) *karpv1.NodeClaim {
		e.RegisterNode(t, nc.Name, nil)
		e.SetNodeReady(t, nc.Name, true)
		nc = e.WaitClaim(t, nc.Name, "initialized", func(nc *karpv1.NodeClaim) bool {
			return karpv1.IsConditionTrue(nc.Status.Conditions, karpv1.ConditionTypeInitialized)
		})
		if node := e.Node(t, nc.Name); !slices.Contains(node.Finalizers, karpv1.TerminationFinalizer) {
			t.Fatalf("registered node's finalizers %v, want %s", node.Finalizers, karpv1.TerminationFinalizer)
		}
		return nc
	}

	for _, tc := range []struct {
		name string
		// setup returns the claim to delete.
		setup func(t *testing.T) *karpv1.NodeClaim
		// instances are expected tagged with the claim (all terminated after).
		instances int
		// node is the Node of the claim's name expected before deletion;
		// keepNode says it is not the claim's and must stay.
		node, keepNode bool
		token          bool
	}{{
		name: "initialized node",
		setup: func(t *testing.T) *karpv1.NodeClaim {
			return registered(t, launched(t))
		},
		// The token was revoked at registration; the Node's termination
		// finalizer does not hold up the claim's deletion.
		instances: 1, node: true,
	}, {
		name:      "launched, node never joined",
		setup:     launched,
		instances: 1, token: true,
	}, {
		name: "launched, a node of its name from another machine",
		setup: func(t *testing.T) *karpv1.NodeClaim {
			nc := launched(t)
			e.RegisterNode(t, nc.Name, func(n *v1.Node) { n.Spec.ProviderID = foreignID })
			e.WaitEvent(t, nc.Name, "ProviderIDMismatch")
			return nc
		},
		instances: 1, node: true, keepNode: true, token: true,
	}, {
		name:  "never launched",
		setup: neverLaunched,
	}, {
		name: "launch crashed before writing the status",
		setup: func(t *testing.T) *karpv1.NodeClaim {
			nc := neverLaunched(t)
			e.LaunchTagged(t, op, nc)
			return nc
		},
		instances: 1,
	}, {
		name: "launch crashed before writing the status, its node joined",
		setup: func(t *testing.T) *karpv1.NodeClaim {
			nc := neverLaunched(t)
			inst := e.LaunchTagged(t, op, nc)
			// A kubelet run with --provider-id: the Node names the
			// claim's machine though the claim's status does not.
			node := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: nc.Name}, Spec: v1.NodeSpec{ProviderID: ec2.FormatProviderID(inst.Zone, inst.ID)}}
			if _, err := e.Kube.CoreV1().Nodes().Create(e.Ctx, node, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			return nc
		},
		instances: 1, node: true,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			nc := tc.setup(t)
			if got := len(e.LiveInstances(t, nc.Name)); got != tc.instances {
				t.Fatalf("%d live instances before deletion, want %d", got, tc.instances)
			}
			if tc.instances > 0 && !e.LaunchTemplateExists(t, nc.Name) {
				t.Fatalf("no launch template before deletion")
			}
			if got := len(e.TokenSecrets(t, nc.Name)) > 0; got != tc.token {
				t.Fatalf("bootstrap token minted: %t, want %t", got, tc.token)
			}
			if _, err := e.Kube.CoreV1().Nodes().Get(e.Ctx, nc.Name, metav1.GetOptions{}); (err == nil) != tc.node {
				t.Fatalf("node before deletion: %v, want it %t", err, tc.node)
			}

			began := time.Now()
			if err := e.Karp.KarpenterV1().NodeClaims().Delete(e.Ctx, nc.Name, metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
			e.WaitClaimGone(t, nc.Name, 30*time.Second)
			t.Logf("claim gone %s after the delete", time.Since(began).Round(time.Millisecond))

			if all := e.CheckMachineGone(t, nc.Name, "after its claim is gone"); len(all) != tc.instances {
				t.Errorf("instances tagged with the claim: %+v, want %d", all, tc.instances)
			}
			if s := e.TokenSecrets(t, nc.Name); len(s) != 0 {
				t.Errorf("bootstrap token Secrets outlived the claim: %v", s)
			}
			node, err := e.Kube.CoreV1().Nodes().Get(e.Ctx, nc.Name, metav1.GetOptions{})
			switch {
			case tc.keepNode && err != nil:
				t.Errorf("another machine's node was deleted: %v", err)
			case tc.keepNode && node.Spec.ProviderID != foreignID:
				t.Errorf("another machine's node changed: %+v", node.Spec)
			case !tc.keepNode && !apierrors.IsNotFound(err):
				t.Errorf("node outlived the claim: %v", err)
			}
		})
	}

	// `kubectl delete node` on a managed Node goes the same way: the Node
	// waits on its finalizer while its claim is deleted, drained and
	// terminated, and goes with it.
	t.Run("node deleted by hand", func(t *testing.T) {
		nc := registered(t, launched(t))
		began := time.Now()
		if err := e.Kube.CoreV1().Nodes().Delete(e.Ctx, nc.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		e.WaitEvent(t, nc.Name, "DeletingNodeClaim")
		e.WaitClaimGone(t, nc.Name, 30*time.Second)
		nct.Eventually(t, 10*time.Second, "node "+nc.Name+" to be gone", func() bool {
			_, err := e.Kube.CoreV1().Nodes().Get(e.Ctx, nc.Name, metav1.GetOptions{})
			return apierrors.IsNotFound(err)
		})
		t.Logf("claim and node gone %s after the node's delete", time.Since(began).Round(time.Millisecond))
		if all := e.CheckMachineGone(t, nc.Name, "after its node was deleted"); len(all) != 1 {
			t.Errorf("instances tagged with the claim: %+v, want 1", all)
		}
	})

	// A Node whose claim was removed by hand (its finalizer patched away)
	// has nothing to wait for: its deletion is not held up.
	t.Run("node deleted by hand, its claim already gone", func(t *testing.T) {
		nc := registered(t, launched(t))
		patch := []byte(`{"metadata":{"finalizers":null}}`)
		if _, err := e.Karp.KarpenterV1().NodeClaims().Patch(e.Ctx, nc.Name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := e.Karp.KarpenterV1().NodeClaims().Delete(e.Ctx, nc.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		e.WaitClaimGone(t, nc.Name, 10*time.Second)
		if err := e.Kube.CoreV1().Nodes().Delete(e.Ctx, nc.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		nct.Eventually(t, 10*time.Second, "node "+nc.Name+" to be gone", func() bool {
			_, err := e.Kube.CoreV1().Nodes().Get(e.Ctx, nc.Name, metav1.GetOptions{})
			return apierrors.IsNotFound(err)
		})
		// The instance is the garbage collector's (an orphan); not waited for here.
	})
}
