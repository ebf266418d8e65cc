package status

import (
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/conditions"
)

func validationCondition(errs field.ErrorList) metav1.Condition {
	if len(errs) == 0 {
		return metav1.Condition{Type: karpv1.ConditionTypeValidationSucceeded, Status: metav1.ConditionTrue, Reason: "ValidationSucceeded"}
	}
	messages := make([]string, len(errs))
	for i, e := range errs {
		messages[i] = e.Error()
	}
	return metav1.Condition{Type: karpv1.ConditionTypeValidationSucceeded, Status: metav1.ConditionFalse,
		Reason: "NodePoolValidationFailed", Message: strings.Join(messages, "; ")}
}

// readyCondition is True when every dependent is, False when one is False,
// else Unknown; its message names each dependent that is not True and why.
func readyCondition(np *karpv1.NodePool) metav1.Condition {
	status := metav1.ConditionTrue
	var messages []string
	for _, t := range karpv1.NodePoolReadyDependents() {
		c := np.GetCondition(t)
		if c != nil && c.Status == metav1.ConditionTrue {
			continue
		}
		if c != nil && c.Status == metav1.ConditionFalse {
			status = metav1.ConditionFalse
			messages = append(messages, t+"=False: "+c.Message)
			continue
		}
		if status == metav1.ConditionTrue {
			status = metav1.ConditionUnknown
		}
		if c == nil {
			messages = append(messages, t+"=Unknown")
		} else {
			messages = append(messages, t+"=Unknown: "+c.Message)
		}
	}
	return conditions.Ready(karpv1.ConditionTypeReady, status, messages)
}
