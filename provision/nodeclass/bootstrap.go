package nodeclass

import (
	"context"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"

	ec2v1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/ec2/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/bootstrap"
	"github.com/fleet-scheduler/fleet-scheduler/provision/metrics"
)

// bootstrapRetry is how soon join credentials found unusable are checked
// again: the runbook's fix (a new token put in SSM) is picked up within it.
const bootstrapRetry = 15 * time.Second

// bootstrapCondition checks the join credentials the class's nodes would
// get and records BootstrapTokenReady: False, naming the SSM parameter and
// what is wrong, keeps the class (and so its NodePools) from launching
// anything until it is fixed. A check that could not be made (the API
// server did not answer) keeps what was known. It returns when to check
// again.
func (c *Controller) bootstrapCondition(ctx context.Context, class *ec2v1.EC2NodeClass) time.Duration {
	err := c.Bootstrap.Check(ctx)
	ce := bootstrap.AsCredentialsError(err)
	switch {
	case err == nil:
		metrics.BootstrapTokenChecks.WithLabelValues("Valid").Inc()
		metrics.BootstrapTokenValid.Set(1)
		class.SetCondition(metav1.Condition{Type: ec2v1.ConditionTypeBootstrapTokenReady, Status: metav1.ConditionTrue,
			Reason: ec2v1.ConditionTypeBootstrapTokenReady})
		return resync
	case ce != nil:
		metrics.BootstrapTokenChecks.WithLabelValues(ce.Reason).Inc()
		metrics.BootstrapTokenValid.Set(0)
		class.SetCondition(metav1.Condition{Type: ec2v1.ConditionTypeBootstrapTokenReady, Status: metav1.ConditionFalse,
			Reason: ce.Reason, Message: ce.Message})
	default:
		klog.FromContext(ctx).Error(err, "Checking the join credentials failed; keeping what was known", "nodeClass", class.Name)
		if class.GetCondition(ec2v1.ConditionTypeBootstrapTokenReady) == nil {
			class.SetCondition(metav1.Condition{Type: ec2v1.ConditionTypeBootstrapTokenReady, Status: metav1.ConditionUnknown,
				Reason: "CheckFailed", Message: err.Error()})
		}
	}
	return bootstrapRetry
}
