package status

import (
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	ec2v1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/ec2/v1"
	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
)

// refersTo reports whether the pool's nodeClassRef names the EC2NodeClass.
// An empty group is taken as ours, as the launcher takes it.
func refersTo(np *karpv1.NodePool, class string) bool {
	ref := np.Spec.Template.Spec.NodeClassRef
	return ref != nil && ref.Name == class && ref.Kind == ec2v1.EC2NodeClassKind && (ref.Group == "" || ref.Group == ec2v1.GroupName)
}

// nodeClassReady judges the pool's EC2NodeClass and returns its generation
// when it exists. A class whose Ready condition is from an older
// generation has not been resolved for its current spec: Unknown.
func (c *Controller) nodeClassReady(np *karpv1.NodePool) (metav1.Condition, *int64, error) {
	cond := func(status metav1.ConditionStatus, reason, format string, args ...any) metav1.Condition {
		return metav1.Condition{Type: karpv1.ConditionTypeNodeClassReady, Status: status, Reason: reason, Message: fmt.Sprintf(format, args...)}
	}
	ref := np.Spec.Template.Spec.NodeClassRef
	if ref == nil {
		return cond(metav1.ConditionFalse, "NodeClassNotFound", "spec.template.spec.nodeClassRef is not set"), nil, nil
	}
	if !refersTo(np, ref.Name) {
		return cond(metav1.ConditionFalse, "NodeClassNotSupported", "nodeClassRef %s/%s %q: only %s/%s is supported",
			ref.Group, ref.Kind, ref.Name, ec2v1.GroupName, ec2v1.EC2NodeClassKind), nil, nil
	}
	class, err := c.NodeClasses.Get(ref.Name)
	if apierrors.IsNotFound(err) {
		return cond(metav1.ConditionFalse, "NodeClassNotFound", "EC2NodeClass %q not found", ref.Name), nil, nil
	}
	if err != nil {
		return metav1.Condition{}, nil, err
	}
	g := class.Generation // not a pointer into the informer cache
	generation := &g
	ready := class.GetCondition(ec2v1.ConditionTypeReady)
	switch {
	case class.DeletionTimestamp != nil:
		return cond(metav1.ConditionFalse, "NodeClassTerminating", "EC2NodeClass %q is being deleted", ref.Name), generation, nil
	case ready == nil || ready.ObservedGeneration != class.Generation:
		return cond(metav1.ConditionUnknown, "NodeClassNotReady", "EC2NodeClass %q is not resolved yet for generation %d", ref.Name, class.Generation), generation, nil
	case ready.Status == metav1.ConditionTrue:
		return metav1.Condition{Type: karpv1.ConditionTypeNodeClassReady, Status: metav1.ConditionTrue, Reason: "NodeClassReady"}, generation, nil
	case ready.Message == "":
		return cond(ready.Status, "NodeClassNotReady", "EC2NodeClass %q is not ready", ref.Name), generation, nil
	default:
		return cond(ready.Status, "NodeClassNotReady", "EC2NodeClass %q is not ready: %s", ref.Name, ready.Message), generation, nil
	}
}
