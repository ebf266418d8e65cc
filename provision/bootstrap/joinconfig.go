package bootstrap

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubeadmv1beta4 "k8s.io/kubernetes/cmd/kubeadm/app/apis/kubeadm/v1beta4"
	"sigs.k8s.io/yaml"
)

// joinConfigFile is where the user data writes the JoinConfiguration,
// readable by root only; it is removed once kubeadm has joined.
const joinConfigFile = userDataDir + "/kubeadm-join.yaml"

// joinConfiguration is the kubeadm JoinConfiguration (kubeadm.k8s.io/v1beta4)
// the node joins with: token discovery of the endpoint pinned to the CA
// hashes, the TLS bootstrap with the same token, and the node's name. The
// token goes to kubeadm in this file, not on a command line where any
// local user could read it from the process table. The node's labels,
// taints and kubelet settings stay in KUBELET_EXTRA_ARGS.
func joinConfiguration(endpoint string, creds JoinCredentials, hashes []string, nodeName string) (string, error) {
	cfg := kubeadmv1beta4.JoinConfiguration{
		TypeMeta: metav1.TypeMeta{APIVersion: kubeadmv1beta4.SchemeGroupVersion.String(), Kind: "JoinConfiguration"},
		Discovery: kubeadmv1beta4.Discovery{BootstrapToken: &kubeadmv1beta4.BootstrapTokenDiscovery{
			APIServerEndpoint: endpoint,
			Token:             creds.Token,
			CACertHashes:      hashes,
		}},
		NodeRegistration: kubeadmv1beta4.NodeRegistrationOptions{Name: nodeName},
	}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		// The values are validated; this would be a bug, and the error
		// must not carry the token.
		return "", fmt.Errorf("encoding the JoinConfiguration failed")
	}
	return string(out), nil
}
