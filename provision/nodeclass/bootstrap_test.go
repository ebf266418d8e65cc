package nodeclass_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/component-base/metrics/testutil"

	ec2v1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/ec2/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/bootstrap"
	"github.com/fleet-scheduler/fleet-scheduler/provision/bootstrap/bootstraptest"
	"github.com/fleet-scheduler/fleet-scheduler/provision/metrics"
	"github.com/fleet-scheduler/fleet-scheduler/test/env"
)

// TestBootstrapTokenReady: with the runbook's SSM parameters, a token the
// API server does not accept (expired, deleted) or a CA hash of another
// cluster turns the class's BootstrapTokenReady and Ready False, naming
// the parameter and what to run, with an event and a metric; the
// runbook's fix - a fresh token put into the parameter - turns it True
// again by itself. The check is a TokenReview: no Secret is read.
func TestBootstrapTokenReady(t *testing.T) {
	const tokenParam, hashParam = "/sesacthon/dev/karpenter/bootstrap-token", "/sesacthon/dev/karpenter/ca-cert-hash"
	metrics.Register()
	c := bootstraptest.StartCluster(t)
	env.InstallCRDs(t, c.Config)
	moto := env.StartMotoT(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if _, err := env.SeedAWS(ctx, moto.AWSConfig(), discovery); err != nil {
		t.Fatal(err)
	}
	ssmc := ssm.NewFromConfig(moto.AWSConfig())
	put := func(name, value string, typ ssmtypes.ParameterType) {
		t.Helper()
		if _, err := ssmc.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String(name), Value: aws.String(value), Type: typ, Overwrite: aws.Bool(true)}); err != nil {
			t.Fatal(err)
		}
	}
	// The runbook's token, created 24 hours ago: its Secret is gone.
	put(tokenParam, "abcdef.0123456789abcdef", ssmtypes.ParameterTypeSecureString)
	put(hashParam, strings.TrimPrefix(c.CACertHashes[0], "sha256:"), ssmtypes.ParameterTypeString)
	src, err := bootstrap.NewSSMTokenSource(ssmc, bootstrap.SSMConfig{TokenParameter: tokenParam, CACertHashParameter: hashParam,
		Client: c.Client, CacheTTL: -1})
	if err != nil {
		t.Fatal(err)
	}
	h := startController(t, ctx, c.Config, c.Client, moto.AWSConfig(), src)
	class := h.create(t, exampleClass(t))

	got := h.waitCondition(t, class.Name, ec2v1.ConditionTypeBootstrapTokenReady, metav1.ConditionFalse)
	cond := got.GetCondition(ec2v1.ConditionTypeBootstrapTokenReady)
	if cond.Reason != bootstrap.ReasonTokenRejected || !strings.Contains(cond.Message, "bootstrap token abcdef.<redacted> in SSM parameter "+tokenParam+" is expired or unknown") ||
		!strings.Contains(cond.Message, "kubeadm token create --ttl 24h --print-join-command") || strings.Contains(cond.Message, "0123456789abcdef") {
		t.Errorf("BootstrapTokenReady = %+v", cond)
	}
	if ready := got.GetCondition(ec2v1.ConditionTypeReady); ready.Status != metav1.ConditionFalse || !strings.Contains(ready.Message, tokenParam) {
		t.Errorf("Ready = %+v, want False naming the parameter", ready)
	}
	env.WaitEvent(t, c.Client, "EC2NodeClass", class.Name, bootstrap.ReasonTokenRejected, "expired or unknown", 30*time.Second)
	if v, err := testutil.GetCounterMetricValue(metrics.BootstrapTokenChecks.WithLabelValues(bootstrap.ReasonTokenRejected)); err != nil || v < 1 {
		t.Errorf("karpenter_bootstrap_token_checks_total{result=BootstrapTokenRejected} = %v (%v)", v, err)
	}
	if v, err := testutil.GetGaugeMetricValue(metrics.BootstrapTokenValid); err != nil || v != 0 {
		t.Errorf("karpenter_bootstrap_token_valid = %v (%v), want 0", v, err)
	}

	// kubeadm token create --ttl 24h, then the runbook's put-parameter.
	began := time.Now()
	newToken(t, ctx, c, "fresh1", "0123456789fresh1")
	put(tokenParam, "fresh1.0123456789fresh1", ssmtypes.ParameterTypeSecureString)
	h.waitCondition(t, class.Name, ec2v1.ConditionTypeReady, metav1.ConditionTrue)
	t.Logf("Ready again %s after the fresh token was put into SSM", time.Since(began).Round(time.Millisecond))
	if v, _ := testutil.GetGaugeMetricValue(metrics.BootstrapTokenValid); v != 1 {
		t.Errorf("karpenter_bootstrap_token_valid = %v, want 1", v)
	}

	// A CA hash of another cluster.
	put(hashParam, strings.Repeat("ab", 32), ssmtypes.ParameterTypeString)
	got = h.waitCondition(t, class.Name, ec2v1.ConditionTypeBootstrapTokenReady, metav1.ConditionFalse)
	if cond := got.GetCondition(ec2v1.ConditionTypeBootstrapTokenReady); cond.Reason != bootstrap.ReasonCACertHashMismatch ||
		!strings.Contains(cond.Message, hashParam) || !strings.Contains(cond.Message, c.CACertHashes[0]) {
		t.Errorf("BootstrapTokenReady = %+v, want CACertHashMismatch naming %s and the cluster's hash", cond, hashParam)
	}
}

// newToken does what `kubeadm token create` and the bootstrap signer do.
func newToken(t *testing.T, ctx context.Context, c *bootstraptest.Cluster, id, secret string) {
	t.Helper()
	c.CreateToken(t, ctx, id, secret, time.Now().Add(24*time.Hour))
	if err := c.SignClusterInfo(ctx); err != nil {
		t.Fatal(err)
	}
}
