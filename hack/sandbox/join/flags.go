package join

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	cliflag "k8s.io/component-base/cli/flag"
	"k8s.io/kubernetes/pkg/util/taints"
)

// kubeadm join's flags that take a value but do not matter here.
var ignoredJoinFlags = []string{
	"cri-socket", "certificate-key", "apiserver-advertise-address", "apiserver-bind-port",
	"ignore-preflight-errors", "patches", "skip-phases", "v", "rootfs",
}

// parseJoinArgs reads the arguments of `kubeadm join` with kubeadm's
// flags; files are what the user data wrote, where --config finds its
// JoinConfiguration.
func parseJoinArgs(args []word, files map[string]string) (JoinScript, error) {
	var (
		j                                        JoinScript
		token, discoveryToken, tlsBootstrapToken string
		controlPlane, dryRun, help               bool
		config, discoveryFile                    string
		hashes                                   []string
	)
	fs := newFlagSet("kubeadm join")
	fs.BoolVar(&controlPlane, "control-plane", false, "")
	fs.BoolVar(&dryRun, "dry-run", false, "")
	fs.BoolVarP(&help, "help", "h", false, "")
	fs.BoolVar(&j.UnsafeSkipCAVerification, "discovery-token-unsafe-skip-ca-verification", false, "")
	fs.StringVar(&token, "token", "", "")
	fs.StringVar(&discoveryToken, "discovery-token", "", "")
	fs.StringVar(&tlsBootstrapToken, "tls-bootstrap-token", "", "")
	fs.StringSliceVar(&hashes, "discovery-token-ca-cert-hash", nil, "")
	fs.StringVar(&j.NodeName, "node-name", "", "")
	fs.StringVar(&config, "config", "", "")
	fs.StringVar(&discoveryFile, "discovery-file", "", "")
	for _, name := range ignoredJoinFlags {
		fs.String(name, "", "")
	}
	values := make([]string, len(args))
	for i, a := range args {
		values[i] = a.value
	}
	if err := parseFlags(fs, values, "kubeadm join"); err != nil {
		return JoinScript{}, err
	}
	show := func(s string) string { return s }
	if len(args) > 0 {
		show = args[0].r.show
	}
	switch {
	case controlPlane:
		return JoinScript{}, errors.New("--control-plane joins are not supported")
	case fs.Changed("discovery-file"):
		return JoinScript{}, errors.New("file discovery (--discovery-file) is not supported; use token discovery")
	}
	if fs.Changed("config") {
		return configJoin(fs, config, files, show)
	}
	var dynamic error
	fs.Visit(func(f *pflag.Flag) {
		values := []string{f.Value.String()}
		if s, ok := f.Value.(pflag.SliceValue); ok {
			values = s.GetSlice()
		}
		for _, v := range values {
			if dynamic == nil && strings.Contains(v, mark) {
				dynamic = fmt.Errorf("--%s comes from a shell expansion (%s) that the user data alone does not resolve", f.Name, show(v))
			}
		}
	})
	if dynamic != nil {
		return JoinScript{}, dynamic
	}
	endpoints := fs.Args()
	switch len(endpoints) {
	case 0:
		return JoinScript{}, errors.New("no API server endpoint")
	case 1:
		if strings.Contains(endpoints[0], mark) {
			return JoinScript{}, fmt.Errorf("the API server endpoint comes from a shell expansion (%s) that the user data alone does not resolve", show(endpoints[0]))
		}
		j.APIServerEndpoint = endpoints[0]
	default:
		return JoinScript{}, fmt.Errorf("%d API server endpoints %v; want one", len(endpoints), endpoints)
	}
	for _, h := range hashes {
		if h = strings.TrimSpace(h); h != "" {
			j.CACertHashes = append(j.CACertHashes, h)
		}
	}
	j.Token, j.TLSBootstrapToken = firstNonEmpty(discoveryToken, token), firstNonEmpty(tlsBootstrapToken, token)
	if j.Token == "" {
		return JoinScript{}, errors.New("no token (--token or --discovery-token)")
	}
	if j.TLSBootstrapToken == "" {
		return JoinScript{}, errors.New("no TLS bootstrap token (--token or --tls-bootstrap-token)")
	}
	return j, nil
}

// parseKubeletArgs reads the flags of KUBELET_EXTRA_ARGS that matter for
// registration, with the kubelet's own flag types. systemd splits the
// variable on whitespace.
func parseKubeletArgs(j *JoinScript, value string) error {
	j.KubeletArgs = strings.Fields(value)
	var maxPods int32
	fs := newFlagSet("kubelet")
	fs.ParseErrorsAllowlist.UnknownFlags = true
	fs.Var(cliflag.NewMapStringString(&j.Labels), "node-labels", "")
	fs.Var(&taintsValue{&j.Taints}, "register-with-taints", "")
	fs.Int32Var(&maxPods, "max-pods", 0, "")
	if err := parseFlags(fs, j.KubeletArgs, "kubelet"); err != nil {
		return err
	}
	if fs.Changed("max-pods") {
		if maxPods < 0 {
			return fmt.Errorf("--max-pods: %d is not a count", maxPods)
		}
		j.MaxPods = &maxPods
	}
	return nil
}

// taintsValue is --register-with-taints: key[=value]:Effect, comma
// separated, each checked as the kubelet checks it.
type taintsValue struct{ taints *[]corev1.Taint }

func (t *taintsValue) String() string { return fmt.Sprint(*t.taints) }
func (t *taintsValue) Type() string   { return "taints" }

func (t *taintsValue) Set(v string) error {
	var specs []string
	for _, s := range strings.Split(v, ",") {
		if s != "" {
			specs = append(specs, s)
		}
	}
	add, remove, err := taints.ParseTaints(specs)
	if err != nil {
		return err
	}
	if len(remove) > 0 {
		return fmt.Errorf("%q removes a taint; a node registers with taints", v)
	}
	*t.taints = add
	return nil
}

func newFlagSet(name string) *pflag.FlagSet {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// parseFlags parses args; an unknown flag or a missing value is named with
// the command it was given to.
func parseFlags(fs *pflag.FlagSet, args []string, command string) error {
	err := fs.Parse(args)
	var (
		unknown  *pflag.NotExistError
		required *pflag.ValueRequiredError
	)
	switch {
	case err == nil:
		return nil
	case errors.As(err, &unknown):
		return fmt.Errorf("unknown %s flag --%s", command, unknown.GetSpecifiedName())
	case errors.As(err, &required):
		return fmt.Errorf("--%s needs a value", required.GetSpecifiedName())
	}
	return err
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
