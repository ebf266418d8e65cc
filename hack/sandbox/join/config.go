package join

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/pflag"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kubeadmapi "k8s.io/kubernetes/cmd/kubeadm/app/apis/kubeadm"
	kubeadmscheme "k8s.io/kubernetes/cmd/kubeadm/app/apis/kubeadm/scheme"
	"k8s.io/kubernetes/cmd/kubeadm/app/util/config/strict"
	"sigs.k8s.io/yaml"
)

// Flags kubeadm lets go with --config; any other is an error there
// ("can not mix '--config' with arguments").
var mixableWithConfig = map[string]bool{
	"config": true, "ignore-preflight-errors": true, "dry-run": true, "skip-phases": true, "v": true, "rootfs": true, "help": true,
}

// configJoin is `kubeadm join --config path`: the join is read from the
// JoinConfiguration the user data wrote to path, decoded the way kubeadm
// decodes it (its scheme: any supported version, defaulted, converted to
// kubeadm's internal type; unknown fields refused).
func configJoin(fs *pflag.FlagSet, path string, files map[string]string, show func(string) string) (JoinScript, error) {
	var mixed []string
	fs.Visit(func(f *pflag.Flag) {
		if !mixableWithConfig[f.Name] {
			mixed = append(mixed, "--"+f.Name)
		}
	})
	if len(fs.Args()) > 0 {
		mixed = append(mixed, fs.Args()...)
	}
	if len(mixed) > 0 {
		return JoinScript{}, fmt.Errorf("kubeadm join does not mix --config with %s", strings.Join(mixed, ", "))
	}
	if strings.Contains(path, mark) {
		return JoinScript{}, fmt.Errorf("--config comes from a shell expansion (%s) that the user data alone does not resolve", show(path))
	}
	data, ok := files[path]
	if !ok {
		return JoinScript{}, fmt.Errorf("--config %s: the user data writes no such file", path)
	}
	if strings.Contains(data, mark) {
		return JoinScript{}, fmt.Errorf("--config %s: the file holds a shell expansion the user data alone does not resolve", path)
	}
	cfg, err := decodeJoinConfiguration([]byte(data))
	if err != nil {
		return JoinScript{}, fmt.Errorf("--config %s: %w", path, err)
	}
	bt := cfg.Discovery.BootstrapToken
	switch {
	case cfg.ControlPlane != nil:
		return JoinScript{}, errors.New("control-plane joins are not supported")
	case cfg.Discovery.File != nil:
		return JoinScript{}, errors.New("file discovery is not supported; use token discovery")
	case bt == nil:
		return JoinScript{}, errors.New("no discovery.bootstrapToken")
	case bt.APIServerEndpoint == "":
		return JoinScript{}, errors.New("no discovery.bootstrapToken.apiServerEndpoint")
	case bt.Token == "":
		return JoinScript{}, errors.New("no discovery.bootstrapToken.token")
	}
	j := JoinScript{
		APIServerEndpoint: bt.APIServerEndpoint, Token: bt.Token, TLSBootstrapToken: cfg.Discovery.TLSBootstrapToken,
		CACertHashes: bt.CACertHashes, UnsafeSkipCAVerification: bt.UnsafeSkipCAVerification,
		NodeName: cfg.NodeRegistration.Name, Taints: cfg.NodeRegistration.Taints, ConfigFile: path,
	}
	if j.TLSBootstrapToken == "" {
		j.TLSBootstrapToken = j.Token
	}
	// kubeadm hands nodeRegistration.kubeletExtraArgs to the kubelet
	// before KUBELET_EXTRA_ARGS, which may override them.
	if args := cfg.NodeRegistration.KubeletExtraArgs; len(args) > 0 {
		flags := make([]string, 0, len(args))
		for _, a := range args {
			flags = append(flags, "--"+a.Name+"="+a.Value)
		}
		if err := parseKubeletArgs(&j, strings.Join(flags, " ")); err != nil {
			return JoinScript{}, fmt.Errorf("nodeRegistration.kubeletExtraArgs: %w", err)
		}
	}
	return j, nil
}

// decodeJoinConfiguration decodes a JoinConfiguration as kubeadm does.
// Errors name fields, never values (the file holds a token).
func decodeJoinConfiguration(data []byte) (*kubeadmapi.JoinConfiguration, error) {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(data, &tm); err != nil {
		return nil, errors.New("not a YAML document")
	}
	gvk := tm.GroupVersionKind()
	if gvk.Kind != "JoinConfiguration" || gvk.Group != kubeadmapi.GroupName {
		return nil, fmt.Errorf("%s is not a kubeadm JoinConfiguration", gvk)
	}
	if err := strict.VerifyUnmarshalStrict([]*runtime.Scheme{kubeadmscheme.Scheme}, gvk, data); err != nil {
		return nil, fmt.Errorf("kubeadm would refuse it: %w", err)
	}
	cfg := &kubeadmapi.JoinConfiguration{}
	if err := runtime.DecodeInto(kubeadmscheme.Codecs.UniversalDecoder(), data, cfg); err != nil {
		return nil, fmt.Errorf("decoding %s: %w", gvk, err)
	}
	return cfg, nil
}
