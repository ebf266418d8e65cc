package join

import (
	"context"
	"errors"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/klog/v2"
	kubeadmapi "k8s.io/kubernetes/cmd/kubeadm/app/apis/kubeadm"
	kubeadmdiscovery "k8s.io/kubernetes/cmd/kubeadm/app/discovery"

	"github.com/fleet-scheduler/fleet-scheduler/provision/bootstrap"
)

// DefaultTimeout bounds discovery. kubeadm waits 5 minutes by default for
// the cluster-info signature of its token to appear; a node simulator wants
// to know sooner.
const DefaultTimeout = time.Minute

// Discover runs kubeadm's token discovery (k8s.io/kubernetes/cmd/kubeadm/app/discovery.For)
// against the join's endpoint: it fetches kube-public/cluster-info
// anonymously, checks the JWS signature the bootstrap signer made with the
// token, pins the CA against the CA cert hashes, fetches cluster-info again
// over TLS verified with that CA, and returns the kubeconfig the kubelet's
// TLS bootstrap uses (cluster CA and server, authenticated by the TLS
// bootstrap token). A timeout of zero means DefaultTimeout.
//
// kubeadm polls until the signature for the token appears, so an unknown or
// expired token fails only at the timeout. Errors never carry the token's secret.
func Discover(ctx context.Context, j JoinScript, timeout time.Duration) (*clientcmdapi.Config, error) {
	if err := j.Validate(); err != nil {
		return nil, err
	}
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < timeout {
		timeout = max(time.Until(deadline), time.Millisecond)
	}
	cfg := &kubeadmapi.JoinConfiguration{
		NodeRegistration: kubeadmapi.NodeRegistrationOptions{Name: j.NodeName},
		Discovery: kubeadmapi.Discovery{
			BootstrapToken: &kubeadmapi.BootstrapTokenDiscovery{
				Token:                    j.Token,
				APIServerEndpoint:        j.APIServerEndpoint,
				CACertHashes:             j.CACertHashes,
				UnsafeSkipCAVerification: j.UnsafeSkipCAVerification,
			},
			TLSBootstrapToken: j.TLSBootstrapToken,
		},
		Timeouts: &kubeadmapi.Timeouts{Discovery: &metav1.Duration{Duration: timeout}},
	}
	logger := klog.FromContext(ctx).WithValues("endpoint", j.APIServerEndpoint, "tokenID", bootstrap.TokenID(j.Token))
	logger.V(2).Info("Running kubeadm token discovery", "timeout", timeout)

	type result struct {
		cfg *clientcmdapi.Config
		err error
	}
	done := make(chan result, 1)
	go func() {
		c, err := kubeadmdiscovery.For(nil, cfg)
		done <- result{c, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			return nil, fmt.Errorf("kubeadm discovery with token %s: %w", bootstrap.RedactToken(j.Token), r.err)
		}
		logger.V(2).Info("kubeadm token discovery succeeded")
		return r.cfg, nil
	case <-ctx.Done():
		return nil, errors.Join(errors.New("kubeadm discovery abandoned"), ctx.Err())
	}
}
