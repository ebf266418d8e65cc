package bootstrap

import (
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	bootstraputil "k8s.io/cluster-bootstrap/token/util"
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
func (j JoinScript) Credentials() JoinCredentials {
	return JoinCredentials{Token: j.Token, CACertHashes: j.CACertHashes}
}

// String formats the join without the tokens' secrets.
func (j JoinScript) String() string {
	return fmt.Sprintf("{APIServerEndpoint:%s Token:%s TLSBootstrapToken:%s CACertHashes:%v UnsafeSkipCAVerification:%t NodeName:%s Labels:%v Taints:%v KubeletArgs:%v}",
		j.APIServerEndpoint, RedactToken(j.Token), RedactToken(j.TLSBootstrapToken), j.CACertHashes, j.UnsafeSkipCAVerification, j.NodeName, j.Labels, j.Taints, j.KubeletArgs)
}

// GoString formats the join for %#v without the tokens' secrets.
func (j JoinScript) GoString() string { return "bootstrap.JoinScript" + j.String() }

// MarshalLog implements logr.Marshaler without the tokens' secrets.
func (j JoinScript) MarshalLog() any { return j.String() }

// Validate checks the join the way `kubeadm join` would before it starts:
// a host:port endpoint, well-formed tokens, and well-formed CA hashes (or
// the explicit skip). Errors never carry a token.
func (j JoinScript) Validate() error {
	if _, err := NormalizeEndpoint(j.APIServerEndpoint); err != nil {
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
		if _, err := NormalizeCACertHash(h); err != nil {
			return err
		}
	}
	return nil
}

// ParseJoin reads user data the way the node would run it and returns the
// join it performs: the one `kubeadm join` command (endpoint, tokens, every
// CA hash, node name) and the last KUBELET_EXTRA_ARGS written (labels,
// taints, max pods). It reads what Render produces and hand-written scripts
// such as the runbook's
//
//	kubeadm join 10.0.1.21:6443 --token abcdef.0123456789abcdef \
//	  --discovery-token-ca-cert-hash sha256:...
//
// Values set from variables assigned a literal earlier are resolved; values
// from command substitution (e.g. fetched from SSM at boot) are an error, as
// are a missing join, token or endpoint. It does not check the values'
// format: see Validate.
func ParseJoin(userData string) (JoinScript, error) {
	scripts := []string{userData}
	if looksLikeMIME(userData) {
		var err error
		if scripts, err = mimeScripts(userData); err != nil {
			return JoinScript{}, err
		}
	}
	var (
		joins      [][]shellWord
		joinLines  []int
		kubeletEnv []shellWord
	)
	for _, s := range scripts {
		cmds, err := lexShell(s)
		if err != nil {
			return JoinScript{}, fmt.Errorf("reading user data as a shell script: %w", err)
		}
		for _, c := range cmds {
			if args, ok := joinArgs(c.words); ok {
				joins, joinLines = append(joins, args), append(joinLines, c.line)
			}
			for _, w := range c.words {
				if name, _, ok := assignment(w.text); ok && name == "KUBELET_EXTRA_ARGS" {
					kubeletEnv = append(kubeletEnv, w)
				}
			}
			if writesKubeletEnv(c) {
				for _, body := range c.heredocs {
					bodyCmds, err := lexShell(body)
					if err != nil {
						continue // not shell-like; systemd would not read it either
					}
					for _, bc := range bodyCmds {
						for _, w := range bc.words {
							if name, _, ok := assignment(w.text); ok && name == "KUBELET_EXTRA_ARGS" {
								kubeletEnv = append(kubeletEnv, w)
							}
						}
					}
				}
			}
		}
	}
	switch len(joins) {
	case 0:
		return JoinScript{}, errors.New("user data has no `kubeadm join` command")
	case 1:
	default:
		return JoinScript{}, fmt.Errorf("user data has %d `kubeadm join` commands (lines %v); want one", len(joins), joinLines)
	}
	j, err := parseJoinArgs(joins[0])
	if err != nil {
		return JoinScript{}, fmt.Errorf("kubeadm join on line %d: %w", joinLines[0], err)
	}
	if len(kubeletEnv) > 0 {
		last := kubeletEnv[len(kubeletEnv)-1]
		if last.dynamic {
			return JoinScript{}, fmt.Errorf("KUBELET_EXTRA_ARGS is built from a shell expansion: %s", last.text)
		}
		_, value, _ := assignment(last.text)
		if err := parseKubeletArgs(&j, unquoteEnvValue(value)); err != nil {
			return JoinScript{}, fmt.Errorf("KUBELET_EXTRA_ARGS: %w", err)
		}
	}
	return j, nil
}

// joinArgs returns the arguments after `kubeadm join` if the command is one,
// looking past sudo, env, assignments and shell keywords.
func joinArgs(words []shellWord) ([]shellWord, bool) {
	i := 0
	for i < len(words) {
		w := words[i].text
		if _, _, ok := assignment(w); ok {
			i++
			continue
		}
		switch w {
		case "sudo", "env", "exec", "command", "time", "nohup", "!", "if", "then", "else", "elif", "do", "while", "until":
			i++
			continue
		}
		if strings.HasPrefix(w, "-") && i > 0 && (words[i-1].text == "sudo" || words[i-1].text == "env") {
			i++ // sudo -E and the like
			continue
		}
		break
	}
	if i+1 < len(words) && path.Base(words[i].text) == "kubeadm" && words[i+1].text == "join" {
		return words[i+2:], true
	}
	return nil, false
}

// kubeadm join's flags that take no value; every other known flag takes one.
var (
	joinBoolFlags = map[string]bool{
		"control-plane": true, "dry-run": true, "discovery-token-unsafe-skip-ca-verification": true, "help": true, "h": true,
	}
	joinValueFlags = map[string]bool{
		"token": true, "discovery-token": true, "tls-bootstrap-token": true, "discovery-token-ca-cert-hash": true,
		"node-name": true, "cri-socket": true, "discovery-file": true, "config": true, "certificate-key": true,
		"apiserver-advertise-address": true, "apiserver-bind-port": true, "ignore-preflight-errors": true,
		"patches": true, "skip-phases": true, "v": true, "rootfs": true,
	}
)

func parseJoinArgs(args []shellWord) (JoinScript, error) {
	var (
		j               JoinScript
		token, dt, tlst string
		endpoints       []string
	)
	literal := func(flag string, w shellWord) (string, error) {
		if w.dynamic {
			return "", fmt.Errorf("%s comes from a shell expansion (%s) that the user data alone does not resolve", flag, w.text)
		}
		return w.text, nil
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a.text, "-") || a.text == "-" {
			v, err := literal("the API server endpoint", a)
			if err != nil {
				return JoinScript{}, err
			}
			endpoints = append(endpoints, v)
			continue
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a.text, "-"), "=")
		switch {
		case joinBoolFlags[name]:
			b := true
			if hasValue {
				var err error
				if b, err = strconv.ParseBool(value); err != nil {
					return JoinScript{}, fmt.Errorf("--%s: %q is not a boolean", name, value)
				}
			}
			switch name {
			case "control-plane":
				if b {
					return JoinScript{}, errors.New("--control-plane joins are not supported")
				}
			case "discovery-token-unsafe-skip-ca-verification":
				j.UnsafeSkipCAVerification = b
			}
			continue
		case joinValueFlags[name]:
		default:
			return JoinScript{}, fmt.Errorf("unknown kubeadm join flag --%s", name)
		}
		w := shellWord{text: value, dynamic: a.dynamic}
		if !hasValue {
			if i+1 >= len(args) {
				return JoinScript{}, fmt.Errorf("--%s needs a value", name)
			}
			i++
			w = args[i]
		}
		v, err := literal("--"+name, w)
		if err != nil {
			return JoinScript{}, err
		}
		switch name {
		case "token":
			token = v
		case "discovery-token":
			dt = v
		case "tls-bootstrap-token":
			tlst = v
		case "discovery-token-ca-cert-hash":
			for _, h := range strings.Split(v, ",") {
				if h = strings.TrimSpace(h); h != "" {
					j.CACertHashes = append(j.CACertHashes, h)
				}
			}
		case "node-name":
			j.NodeName = v
		case "config":
			return JoinScript{}, errors.New("kubeadm join --config is not supported; pass the join on the command line")
		case "discovery-file":
			return JoinScript{}, errors.New("file discovery (--discovery-file) is not supported; use token discovery")
		}
	}
	switch len(endpoints) {
	case 0:
		return JoinScript{}, errors.New("no API server endpoint")
	case 1:
		j.APIServerEndpoint = endpoints[0]
	default:
		return JoinScript{}, fmt.Errorf("%d API server endpoints %v; want one", len(endpoints), endpoints)
	}
	j.Token, j.TLSBootstrapToken = firstNonEmpty(dt, token), firstNonEmpty(tlst, token)
	if j.Token == "" {
		return JoinScript{}, errors.New("no token (--token or --discovery-token)")
	}
	if j.TLSBootstrapToken == "" {
		return JoinScript{}, errors.New("no TLS bootstrap token (--token or --tls-bootstrap-token)")
	}
	return j, nil
}

// parseKubeletArgs reads the flags of KUBELET_EXTRA_ARGS that matter for
// registration. systemd splits the variable on whitespace.
func parseKubeletArgs(j *JoinScript, value string) error {
	j.KubeletArgs = strings.Fields(value)
	for i := 0; i < len(j.KubeletArgs); i++ {
		a := j.KubeletArgs[i]
		name, v, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if name != "node-labels" && name != "register-with-taints" && name != "max-pods" {
			continue
		}
		if !hasValue {
			if i+1 >= len(j.KubeletArgs) {
				return fmt.Errorf("--%s needs a value", name)
			}
			i++
			v = j.KubeletArgs[i]
		}
		switch name {
		case "node-labels":
			if j.Labels == nil {
				j.Labels = map[string]string{}
			}
			for _, kv := range strings.Split(v, ",") {
				if kv == "" {
					continue
				}
				k, val, ok := strings.Cut(kv, "=")
				if !ok {
					return fmt.Errorf("--node-labels: %q is not key=value", kv)
				}
				j.Labels[k] = val
			}
		case "register-with-taints":
			j.Taints = nil
			for _, spec := range strings.Split(v, ",") {
				if spec == "" {
					continue
				}
				t, err := parseTaint(spec)
				if err != nil {
					return fmt.Errorf("--register-with-taints: %w", err)
				}
				j.Taints = append(j.Taints, t)
			}
		case "max-pods":
			n, err := strconv.ParseInt(v, 10, 32)
			if err != nil || n < 0 {
				return fmt.Errorf("--max-pods: %q is not a count", v)
			}
			n32 := int32(n)
			j.MaxPods = &n32
		}
	}
	return nil
}

// parseTaint reads key[=value]:Effect.
func parseTaint(spec string) (corev1.Taint, error) {
	i := strings.LastIndex(spec, ":")
	if i < 0 {
		return corev1.Taint{}, fmt.Errorf("taint %q has no effect", spec)
	}
	k, v, _ := strings.Cut(spec[:i], "=")
	effect := spec[i+1:]
	t := corev1.Taint{Key: k, Value: v, Effect: corev1.TaintEffect(effect)}
	if err := validateTaint(t); err != nil {
		return corev1.Taint{}, err
	}
	return t, nil
}

// writesKubeletEnv reports whether a command writes a kubelet environment
// file (cat > /etc/default/kubelet <<EOF, tee /etc/sysconfig/kubelet, ...).
func writesKubeletEnv(c shellCommand) bool {
	for _, w := range append(append([]shellWord{}, c.redirects...), c.words...) {
		if path.Base(w.text) == "kubelet" && strings.HasPrefix(w.text, "/etc/") {
			return true
		}
	}
	return false
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

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
