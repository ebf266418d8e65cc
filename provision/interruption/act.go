package interruption

import (
	"context"
	"errors"
	"fmt"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"k8s.io/klog/v2"

	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/controller"
	"github.com/fleet-scheduler/fleet-scheduler/provision/drain"
	"github.com/fleet-scheduler/fleet-scheduler/provision/ec2"
	"github.com/fleet-scheduler/fleet-scheduler/provision/interruption/messages"
	"github.com/fleet-scheduler/fleet-scheduler/provision/metrics"
)

// ReasonInterrupted is the DisruptionReason of a claim deleted on an
// interruption message, and the reason label of
// karpenter_nodeclaims_disrupted_total it counts under ("interruption").
const (
	ReasonInterrupted = "Interrupted"
	metricReason      = "interruption"
)

const instanceIDIndex = "status.instanceID"

// instanceIDOf indexes a NodeClaim by the instance id in its provider ID.
func instanceIDOf(obj any) ([]string, error) {
	nc, ok := obj.(*karpv1.NodeClaim)
	if !ok || nc.Status.ProviderID == "" {
		return nil, nil
	}
	_, id, err := ec2.ParseProviderID(nc.Status.ProviderID)
	if err != nil {
		return nil, nil
	}
	return []string{id}, nil
}

// act applies the message to every NodeClaim of its instances. found is
// false when no claim owns any of them.
func (c *Controller) act(ctx context.Context, msg messages.Message) (found bool, err error) {
	var errs []error
	for _, id := range msg.InstanceIDs {
		objs, err := c.Claims.ByIndex(instanceIDIndex, id)
		if err != nil {
			return found, err
		}
		for _, obj := range objs {
			nc, ok := obj.(*karpv1.NodeClaim)
			if !ok {
				continue
			}
			found = true
			if err := c.actOn(ctx, msg, id, nc); err != nil {
				errs = append(errs, fmt.Errorf("NodeClaim %s: %w", nc.Name, err))
			}
		}
	}
	return found, errors.Join(errs...)
}

// actOn: the event for the kind on the claim and its Node; for all but a
// rebalance recommendation, the offering marked (spot interruptions), the
// claim marked Interrupted and deleted, and the Node tainted so nothing new
// lands on it: the claim's termination drains the Node (evicting the pods,
// whose replacements the Provisioner launches capacity for meanwhile) and
// then terminates the instance.
func (c *Controller) actOn(ctx context.Context, msg messages.Message, instanceID string, nc *karpv1.NodeClaim) error {
	node := c.node(nc)
	logger := klog.FromContext(ctx).WithValues("nodeClaim", nc.Name, "instance", instanceID)
	if node != nil {
		logger = logger.WithValues("node", node.Name)
	}
	c.notify(msg, instanceID, nc, node)
	if msg.Kind == messages.RebalanceRecommendation {
		logger.V(2).Info("Rebalance recommendation; the node stays")
		return nil
	}
	if msg.Kind == messages.SpotInterruption {
		it, zone := nc.Labels[v1.LabelInstanceTypeStable], nc.Labels[v1.LabelTopologyZone]
		if it != "" && zone != "" {
			c.Offerings.MarkUnavailable(it, zone, karpv1.CapacityTypeSpot, c.unavailableTTL())
			logger.V(2).Info("Spot offering marked unavailable", "instanceType", it, "zone", zone, "for", c.unavailableTTL())
		}
	}
	if nc.DeletionTimestamp != nil {
		return nil // already on its way out
	}
	message := fmt.Sprintf("%s for instance %s (%s)", msg.DetailType, instanceID, msg.Detail)
	marked, err := c.mark(ctx, nc.Name, message)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("marking it %s: %w", ReasonInterrupted, err)
	}
	if marked.DeletionTimestamp != nil {
		return nil
	}
	// Delete, then taint: whoever sees the taint then finds the claim
	// deleting. The other way round, the scale-down loop could take a
	// tainted node of a live claim for a replacement given up and take
	// the taint off again.
	err = c.Karpenter.KarpenterV1().NodeClaims().Delete(ctx, nc.Name, metav1.DeleteOptions{Preconditions: metav1.NewUIDPreconditions(string(nc.UID))})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil // gone, or another claim of the name
	}
	if err != nil {
		return fmt.Errorf("deleting it: %w", err)
	}
	if node != nil {
		if _, _, err := drain.TaintDisrupted(ctx, c.Kube, node.Name); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("tainting node %s: %w", node.Name, err)
		}
	}
	c.event(nc, node, v1.EventTypeWarning, "TerminatingOnInterruption", "Interruption triggered termination: "+message)
	metrics.NodeClaimsDisrupted.WithLabelValues(metricReason, nc.Labels[karpv1.NodePoolLabelKey]).Inc()
	logger.Info("Deleting the NodeClaim of an interrupted instance", "kind", msg.Kind, "detail", msg.Detail)
	return nil
}

// mark sets DisruptionReason=Interrupted on the live claim.
func (c *Controller) mark(ctx context.Context, name, message string) (*karpv1.NodeClaim, error) {
	var out *karpv1.NodeClaim
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		nc, err := c.Karpenter.KarpenterV1().NodeClaims().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		out = nc
		if nc.DeletionTimestamp != nil {
			return nil
		}
		nc = nc.DeepCopy()
		nc.SetCondition(metav1.Condition{Type: karpv1.ConditionTypeDisruptionReason, Status: metav1.ConditionTrue,
			Reason: ReasonInterrupted, Message: message})
		out, err = c.Karpenter.KarpenterV1().NodeClaims().UpdateStatus(ctx, nc, metav1.UpdateOptions{})
		return err
	})
	return out, err
}

// notify records the kind's event, with Karpenter's reasons.
func (c *Controller) notify(msg messages.Message, instanceID string, nc *karpv1.NodeClaim, node *v1.Node) {
	var eventType, reason, note string
	switch msg.Kind {
	case messages.SpotInterruption:
		eventType, reason, note = v1.EventTypeWarning, "SpotInterrupted", "Spot interruption warning for instance %s (%s)"
	case messages.RebalanceRecommendation:
		eventType, reason, note = v1.EventTypeNormal, "SpotRebalanceRecommendation", "Spot rebalance recommendation for instance %s (%s)"
	case messages.ScheduledChange:
		eventType, reason, note = v1.EventTypeWarning, "InstanceUnhealthy", "AWS Health scheduled change for instance %s (%s)"
	case messages.InstanceStopped:
		eventType, reason, note = v1.EventTypeWarning, "InstanceStopping", "Instance %s is stopping (%s)"
	case messages.InstanceTerminated:
		eventType, reason, note = v1.EventTypeWarning, "InstanceTerminating", "Instance %s is terminating (%s)"
	default:
		return
	}
	c.event(nc, node, eventType, reason, fmt.Sprintf(note, instanceID, msg.Detail))
}

func (c *Controller) event(nc *karpv1.NodeClaim, node *v1.Node, eventType, reason, note string) {
	c.Recorder.Eventf(nc, controller.NodeObject(node), eventType, reason, "Interrupt", "%s", note)
	if node != nil {
		c.Recorder.Eventf(controller.NodeObject(node), nil, eventType, reason, "Interrupt", "%s", note)
	}
}

// node is the claim's Node from the cache, or nil.
func (c *Controller) node(nc *karpv1.NodeClaim) *v1.Node {
	name := nc.Status.NodeName
	if name == "" {
		return nil
	}
	node, err := c.Nodes.Get(name)
	if err != nil {
		return nil
	}
	return node
}
