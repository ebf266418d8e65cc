package drain

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"

	v1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// newEviction is the policy/v1 Eviction of exactly this pod (by UID), with
// the pod's own grace period.
func newEviction(pod *v1.Pod) *policyv1.Eviction {
	return &policyv1.Eviction{
		ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace},
		DeleteOptions: &metav1.DeleteOptions{
			Preconditions: metav1.NewUIDPreconditions(string(pod.UID)),
		},
	}
}

// budgetName finds the budget's name in the apiserver's refusal, "The
// disruption budget NAME needs N healthy pods and has M currently" or "The
// disruption budget NAME is still being processed by the server.".
var budgetName = regexp.MustCompile(`^The disruption budget (\S+) (.*)$`)

// evictionRefusal says why the Eviction API refused the pod, naming the
// PodDisruptionBudget when one did.
//
// The API answers 429 when a budget allows no disruption now (or has not
// been processed yet), and 500 when several budgets select the pod.
func evictionRefusal(pod *v1.Pod, err error) string {
	var status apierrors.APIStatus
	if !errors.As(err, &status) {
		return err.Error()
	}
	s := status.Status()
	if s.Details != nil {
		for _, c := range s.Details.Causes {
			if c.Type != policyv1.DisruptionBudgetCause {
				continue
			}
			if m := budgetName.FindStringSubmatch(c.Message); m != nil {
				return fmt.Sprintf("PodDisruptionBudget %s/%s allows no disruption now (%s)", pod.Namespace, m[1], trimDot(m[2]))
			}
			return "a PodDisruptionBudget allows no disruption now: " + c.Message
		}
	}
	if s.Code == http.StatusTooManyRequests {
		return "eviction refused (429): " + s.Message
	}
	return fmt.Sprintf("eviction failed (%d): %s", s.Code, s.Message)
}

func trimDot(s string) string {
	if n := len(s); n > 0 && s[n-1] == '.' {
		return s[:n-1]
	}
	return s
}
