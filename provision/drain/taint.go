package drain

import (
	"context"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"

	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
)

// TaintDisrupted puts karpenter.sh/disrupted:NoSchedule on the node, so
// nothing new lands on it, and reports whether it had to.
func TaintDisrupted(ctx context.Context, kube kubernetes.Interface, nodeName string) (*v1.Node, bool, error) {
	var node *v1.Node
	added := false
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		n, err := kube.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		node = n
		if HasDisruptedTaint(n) {
			return nil
		}
		n = n.DeepCopy()
		n.Spec.Taints = append(n.Spec.Taints, karpv1.DisruptedNoScheduleTaint())
		updated, err := kube.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{})
		if err != nil {
			return err
		}
		node, added = updated, true
		return nil
	})
	return node, added, err
}

// UntaintDisrupted takes karpenter.sh/disrupted:NoSchedule off the node
// again, for a disruption given up before the node was deleted.
func UntaintDisrupted(ctx context.Context, kube kubernetes.Interface, nodeName string) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		n, err := kube.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
		if err != nil || !HasDisruptedTaint(n) {
			return err
		}
		n = n.DeepCopy()
		want := karpv1.DisruptedNoScheduleTaint()
		kept := n.Spec.Taints[:0]
		for _, t := range n.Spec.Taints {
			if !t.MatchTaint(&want) {
				kept = append(kept, t)
			}
		}
		n.Spec.Taints = kept
		_, err = kube.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{})
		return err
	})
}
