// Package join reads back, from a node's user data, the join it performs:
// the `kubeadm join` arguments and the kubelet flags it writes to
// KUBELET_EXTRA_ARGS, and runs kubeadm's own token discovery for it (what
// `kubeadm join` does before the kubelet's TLS bootstrap). The node
// simulator boots nodes from their user data alone with it; tests use it
// to prove what fleet-scheduler renders. The scheduler does not need it, so
// it lives in the sandbox, as does kubeadm's discovery code it links.
package join

import (
	"errors"
	"fmt"
	"maps"
	"strings"

	corev1 "k8s.io/api/core/v1"
	bootstraputil "k8s.io/cluster-bootstrap/token/util"

	"github.com/fleet-scheduler/fleet-scheduler/provision/bootstrap"
)

// JoinScript is what a node's user data tells it to do to join: the
// `kubeadm join` arguments and the kubelet flags in KUBELET_EXTRA_ARGS.
// Like JoinCredentials it formats itself with the tokens redacted.
type JoinScript struct {
	// APIServerEndpoint is the join argument, host:port.
	APIServerEndpoint string
	// Token is the discovery token: --discovery-token, else --token.
	Token string
	// TLSBootstrapToken authenticates the kubelet's CSR: --tls-bootstrap-token, else --token.
	TLSBootstrapToken string
	// CACertHashes are the --discovery-token-ca-cert-hash values, as written.
	CACertHashes []string
	// UnsafeSkipCAVerification is --discovery-token-unsafe-skip-ca-verification.
	UnsafeSkipCAVerification bool
	// NodeName is --node-name; empty means the host name.
	NodeName string
	// ConfigFile is the JoinConfiguration file of `kubeadm join --config`,
	// when the join is given that way (the values above come from it).
	ConfigFile string

	// Labels are the kubelet's --node-labels.
	Labels map[string]string
	// Taints are the kubelet's --register-with-taints.
	Taints []corev1.Taint
	// MaxPods is the kubelet's --max-pods, if set.
	MaxPods *int32
	// KubeletArgs are all of KUBELET_EXTRA_ARGS, split on whitespace.
	KubeletArgs []string
}

// Credentials returns the discovery credentials of the join.
func (j JoinScript) Credentials() bootstrap.JoinCredentials {
	return bootstrap.JoinCredentials{Token: j.Token, CACertHashes: j.CACertHashes}
}

// String formats the join without the tokens' secrets.
func (j JoinScript) String() string {
	return fmt.Sprintf("{APIServerEndpoint:%s Token:%s TLSBootstrapToken:%s CACertHashes:%v UnsafeSkipCAVerification:%t NodeName:%s ConfigFile:%s Labels:%v Taints:%v KubeletArgs:%v}",
		j.APIServerEndpoint, bootstrap.RedactToken(j.Token), bootstrap.RedactToken(j.TLSBootstrapToken), j.CACertHashes, j.UnsafeSkipCAVerification, j.NodeName, j.ConfigFile, j.Labels, j.Taints, j.KubeletArgs)
}

// GoString formats the join for %#v without the tokens' secrets.
func (j JoinScript) GoString() string { return "join.JoinScript" + j.String() }

// MarshalLog implements logr.Marshaler without the tokens' secrets.
func (j JoinScript) MarshalLog() any { return j.String() }

// Validate checks the join the way `kubeadm join` would before it starts:
// a host:port endpoint, well-formed tokens, and well-formed CA hashes (or
// the explicit skip). Errors never carry a token.
func (j JoinScript) Validate() error {
	if _, err := bootstrap.NormalizeEndpoint(j.APIServerEndpoint); err != nil {
		return err
	}
	if !bootstraputil.IsValidBootstrapToken(j.Token) {
		return errors.New("the discovery token is not a valid bootstrap token (want [a-z0-9]{6}.[a-z0-9]{16})")
	}
	if !bootstraputil.IsValidBootstrapToken(j.TLSBootstrapToken) {
		return errors.New("the TLS bootstrap token is not a valid bootstrap token (want [a-z0-9]{6}.[a-z0-9]{16})")
	}
	if len(j.CACertHashes) == 0 && !j.UnsafeSkipCAVerification {
		return errors.New("no --discovery-token-ca-cert-hash and no --discovery-token-unsafe-skip-ca-verification")
	}
	for _, h := range j.CACertHashes {
		if !strings.HasPrefix(strings.ToLower(h), "sha256:") {
			return errors.New("CA cert hash: kubeadm wants the sha256: prefix")
		}
		if _, err := bootstrap.NormalizeCACertHash(h); err != nil {
			return err
		}
	}
	return nil
}

// ParseJoin reads user data the way the node would run it and returns the
// join it performs: the one `kubeadm join` command (endpoint, tokens, every
// CA hash, node name - on its command line, or in the kubeadm
// JoinConfiguration of `kubeadm join --config <file>` that a heredoc of the
// user data writes) and the last KUBELET_EXTRA_ARGS written (labels,
// taints, max pods). It reads what bootstrap.Render produces and
// hand-written scripts such as the runbook's
//
//	kubeadm join 10.0.1.21:6443 --token abcdef.0123456789abcdef \
//	  --discovery-token-ca-cert-hash sha256:...
//
// Values set from variables assigned a literal earlier are resolved; values
// from command substitution (e.g. fetched from SSM at boot) are an error, as
// are a missing join, token or endpoint. It does not check the values'
// format: see Validate.
func ParseJoin(userData string) (JoinScript, error) {
	scripts, err := bootstrap.Scripts(userData)
	if err != nil {
		return JoinScript{}, err
	}
	var (
		joins      []command
		kubeletEnv []word
		files      = map[string]string{}
	)
	for _, s := range scripts {
		r, err := readScript(s)
		if err != nil {
			return JoinScript{}, fmt.Errorf("reading user data as a shell script: %w", err)
		}
		joins = append(joins, r.joins...)
		kubeletEnv = append(kubeletEnv, r.kubeletEnv...)
		maps.Copy(files, r.files)
	}
	switch len(joins) {
	case 0:
		return JoinScript{}, errors.New("user data has no `kubeadm join` command")
	case 1:
	default:
		lines := make([]int, len(joins))
		for i, c := range joins {
			lines[i] = c.line
		}
		return JoinScript{}, fmt.Errorf("user data has %d `kubeadm join` commands (lines %v); want one", len(joins), lines)
	}
	j, err := parseJoinArgs(joins[0].args, files)
	if err != nil {
		return JoinScript{}, fmt.Errorf("kubeadm join on line %d: %w", joins[0].line, err)
	}
	if len(kubeletEnv) > 0 {
		last := kubeletEnv[len(kubeletEnv)-1]
		if last.dynamic() {
			return JoinScript{}, fmt.Errorf("KUBELET_EXTRA_ARGS is built from a shell expansion: %s", last.text())
		}
		_, value, _ := strings.Cut(last.value, "=")
		if err := parseKubeletArgs(&j, unquoteEnvValue(value)); err != nil {
			return JoinScript{}, fmt.Errorf("KUBELET_EXTRA_ARGS: %w", err)
		}
	}
	return j, nil
}

// unquoteEnvValue strips one pair of surrounding quotes, as systemd does
// when it reads an environment file.
func unquoteEnvValue(v string) string {
	v = strings.TrimSpace(v)
	if len(v) >= 2 && (v[0] == '"' && v[len(v)-1] == '"' || v[0] == '\'' && v[len(v)-1] == '\'') {
		return v[1 : len(v)-1]
	}
	return v
}
