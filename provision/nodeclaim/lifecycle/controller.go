// Package lifecycle moves a NodeClaim from created to a node ready for its
// pods: launch (the cloud provider makes the machine), registration (the
// Node that joined is linked to the claim, labelled and untainted),
// initialization (the Node is Ready and its startup taints are gone), and
// liveness (a machine whose Node never registers is given up on).
package lifecycle

import (
	"context"
	"time"

	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"

	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/client/clientset/versioned"
	karplisters "github.com/fleet-scheduler/fleet-scheduler/provision/client/listers/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/cloudprovider"
	"github.com/fleet-scheduler/fleet-scheduler/provision/controller"
	"github.com/fleet-scheduler/fleet-scheduler/provision/launchhealth"
	"github.com/fleet-scheduler/fleet-scheduler/provision/metrics"
)

// Name is the controller's name.
const Name = "nodeclaim.lifecycle"

// Controller reconciles NodeClaims that are not being deleted.
type Controller struct {
	Karpenter  versioned.Interface
	Kube       kubernetes.Interface
	NodeClaims karplisters.NodeClaimLister
	Nodes      corelisters.NodeLister
	Cloud      cloudprovider.CloudProvider
	Recorder   events.EventRecorder
	// RegistrationTTL is how long a claim has to register its Node: from
	// launch, and from creation for a launch that keeps failing (15m when
	// unset).
	RegistrationTTL time.Duration
	// Clock is the controller's clock; the real one when nil.
	Clock clock.PassiveClock
	// Pods is the pod informer's indexer with NominatedIndex (IndexPods):
	// the pods a failed launch is reported to. Nil: none are.
	Pods cache.Indexer
	// Health is told which launched nodes registered and which never
	// did; nil: nobody is.
	Health *launchhealth.Tracker
}

// Reconcile reconciles the NodeClaim the key names.
func (c *Controller) Reconcile(ctx context.Context, key string) (controller.Result, error) {
	return controller.ForObject(c.NodeClaims, c.reconcile).Reconcile(ctx, key)
}

// reconcile runs the claim through launch, registration and initialization,
// stopping at the first step that is not done yet.
func (c *Controller) reconcile(ctx context.Context, nc *karpv1.NodeClaim) (controller.Result, error) {
	if nc.DeletionTimestamp != nil {
		return controller.Result{}, nil // the termination controller owns it now
	}
	nc = nc.DeepCopy()
	if !isTrue(nc, karpv1.ConditionTypeLaunched) {
		return c.launch(ctx, nc)
	}
	if !isTrue(nc, karpv1.ConditionTypeRegistered) {
		return c.register(ctx, nc)
	}
	if !isTrue(nc, karpv1.ConditionTypeInitialized) {
		return c.initialize(ctx, nc)
	}
	return controller.Result{}, nil
}

// Register connects the controller to its informers: NodeClaim events, and
// Node events mapped to the claim of the same name.
func Register(ctl *controller.Controller, nodeClaims, nodes cache.SharedIndexInformer) error {
	// Launch failures count from zero, so the first one shows as an increase.
	for _, reason := range launchFailureReasons {
		metrics.CloudProviderErrors.WithLabelValues(Name, "Create", "aws", reason)
	}
	if err := ctl.Watch(nodeClaims); err != nil {
		return err
	}
	return ctl.Watch(nodes)
}

// defaultRegistrationTTL stands in for an unset RegistrationTTL: zero
// would give every claim up the moment it launched.
const defaultRegistrationTTL = 15 * time.Minute

func (c *Controller) registrationTTL() time.Duration {
	if c.RegistrationTTL > 0 {
		return c.RegistrationTTL
	}
	return defaultRegistrationTTL
}

func (c *Controller) now() time.Time { return controller.Now(c.Clock) }
