package scheme

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/klog/v2/ktesting"
	schedv1 "k8s.io/kube-scheduler/config/v1"
	"k8s.io/kubernetes/cmd/kube-scheduler/app/options"
	schedconfig "k8s.io/kubernetes/pkg/scheduler/apis/config"
	schedconfigv1 "k8s.io/kubernetes/pkg/scheduler/apis/config/v1"

	"github.com/fleet-scheduler/fleet-scheduler/plugins/apis/config"
)

// load reads a KubeSchedulerConfiguration the way kube-scheduler reads --config.
func load(t *testing.T, yaml string) (*schedconfig.KubeSchedulerConfiguration, error) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	logger, _ := ktesting.NewTestContext(t)
	return options.LoadConfigFromFile(logger, file)
}

const header = `apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
profiles:
- schedulerName: fleet-scheduler
  plugins:
    postFilter:
      enabled:
      - name: Provisioner
`

func provisionerArgs(t *testing.T, cfg *schedconfig.KubeSchedulerConfiguration) *config.ProvisionerArgs {
	t.Helper()
	for _, pc := range cfg.Profiles[0].PluginConfig {
		if pc.Name == "Provisioner" {
			args, ok := pc.Args.(*config.ProvisionerArgs)
			if !ok {
				t.Fatalf("Provisioner args decoded as %T, want *config.ProvisionerArgs", pc.Args)
			}
			return args
		}
	}
	t.Fatalf("no Provisioner pluginConfig in %+v", cfg.Profiles[0].PluginConfig)
	return nil
}

func dur(d time.Duration) metav1.Duration { return metav1.Duration{Duration: d} }

func TestDecodeKubeSchedulerConfiguration(t *testing.T) {
	defaults := config.ProvisionerArgs{
		Bootstrap:                config.BootstrapArgs{TokenTTL: dur(30 * time.Minute)},
		BatchIdleDuration:        dur(time.Second),
		BatchMaxDuration:         dur(10 * time.Second),
		RegistrationTTL:          dur(15 * time.Minute),
		VMMemoryOverheadPercent:  0.075,
		DisruptionInterval:       dur(10 * time.Second),
		AWSCallTimeouts:          config.AWSCallTimeouts{Default: dur(15 * time.Second)},
		UnregisteredNodesToPause: 3,
	}
	tests := []struct {
		name string
		yaml string
		want func(*config.ProvisionerArgs)
	}{
		{
			name: "partial args get defaults",
			yaml: header + `  pluginConfig:
  - name: Provisioner
    args:
      clusterName: sesacthon-dev
      region: ap-northeast-2
      bootstrap:
        tokenSSMParameter: /sesacthon/dev/karpenter/bootstrap-token
        caCertHashSSMParameter: /sesacthon/dev/karpenter/ca-cert-hash
      batchMaxDuration: 20s
      vmMemoryOverheadPercent: 0
      interruptionQueue: sesacthon-dev
      awsCallTimeouts:
        perCall:
          CreateFleet: 1m
      unregisteredNodesToPause: 5
`,
			want: func(a *config.ProvisionerArgs) {
				a.AWSCallTimeouts.PerCall = map[string]metav1.Duration{"CreateFleet": dur(time.Minute)}
				a.UnregisteredNodesToPause = 5
				a.ClusterName, a.Region = "sesacthon-dev", "ap-northeast-2"
				a.Bootstrap.TokenSSMParameter = "/sesacthon/dev/karpenter/bootstrap-token"
				a.Bootstrap.CACertHashSSMParameter = "/sesacthon/dev/karpenter/ca-cert-hash"
				a.BatchMaxDuration = dur(20 * time.Second)
				a.VMMemoryOverheadPercent = 0
				a.InterruptionQueue = "sesacthon-dev"
			},
		},
		{
			name: "args with apiVersion and kind",
			yaml: header + `  pluginConfig:
  - name: Provisioner
    args:
      apiVersion: kubescheduler.config.k8s.io/v1
      kind: ProvisionerArgs
      clusterName: c1
      bootstrap:
        tokenTTL: 1h
`,
			want: func(a *config.ProvisionerArgs) {
				a.ClusterName, a.Bootstrap.TokenTTL = "c1", dur(time.Hour)
			},
		},
		{
			// kube-scheduler appends defaulted args for an enabled plugin
			// without pluginConfig; validation then asks for clusterName.
			name: "no pluginConfig at all",
			yaml: header,
			want: func(*config.ProvisionerArgs) {},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := load(t, tc.yaml)
			if err != nil {
				t.Fatal(err)
			}
			want := defaults
			tc.want(&want)
			got := provisionerArgs(t, cfg)
			got.TypeMeta = metav1.TypeMeta{} // internal objects carry no GVK
			if diff := cmp.Diff(&want, got); diff != "" {
				t.Errorf("args (-want +got):\n%s", diff)
			}
			// Defaults sit in multiPoint; the framework runs multiPoint
			// plugins before ones enabled only at postFilter, so
			// DefaultPreemption still goes first (checked end to end in
			// cmd/scheduler).
			plugins := cfg.Profiles[0].Plugins
			if post := plugins.PostFilter.Enabled; len(post) != 1 || post[0].Name != "Provisioner" {
				t.Errorf("postFilter plugins = %v, want just Provisioner", post)
			}
			if !slices.ContainsFunc(plugins.MultiPoint.Enabled, func(p schedconfig.Plugin) bool { return p.Name == "DefaultPreemption" }) {
				t.Errorf("multiPoint plugins %v lack DefaultPreemption", plugins.MultiPoint.Enabled)
			}
		})
	}
}

func TestDecodeRejectsUnknownField(t *testing.T) {
	_, err := load(t, header+`  pluginConfig:
  - name: Provisioner
    args:
      clusterNmae: typo
`)
	if err == nil || !strings.Contains(err.Error(), `unknown field "clusterNmae"`) {
		t.Fatalf("err = %v, want a strict decoding error naming clusterNmae", err)
	}
}

// TestEncodeRoundTrip covers kube-scheduler's --write-config-to and its
// startup log of the effective config, which convert args back to v1.
func TestEncodeRoundTrip(t *testing.T) {
	cfg, err := load(t, header+`  pluginConfig:
  - name: Provisioner
    args:
      clusterName: c1
      clusterEndpoint: https://10.0.1.21:6443
      interruptionQueue: sesacthon-dev
`)
	if err != nil {
		t.Fatal(err)
	}
	info, ok := runtime.SerializerInfoForMediaType(Codecs.SupportedMediaTypes(), runtime.ContentTypeYAML)
	if !ok {
		t.Fatal("no YAML serializer")
	}
	var buf bytes.Buffer
	if err := Codecs.EncoderForVersion(info.Serializer, schedv1.SchemeGroupVersion).Encode(cfg, &buf); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"kind: ProvisionerArgs", "clusterEndpoint: https://10.0.1.21:6443", "batchIdleDuration: 1s", "tokenTTL: 30m0s", "interruptionQueue: sesacthon-dev"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("encoded config lacks %q:\n%s", want, buf.String())
		}
	}
	again, err := load(t, buf.String())
	if err != nil {
		t.Fatalf("re-decoding the encoded config: %v", err)
	}
	if diff := cmp.Diff(provisionerArgs(t, cfg), provisionerArgs(t, again)); diff != "" {
		t.Errorf("round trip (-first +second):\n%s", diff)
	}
}

func TestRegisteredInPluginArgConversionScheme(t *testing.T) {
	// kube-scheduler defaults and converts plugin args with this second
	// scheme, built from its scheme builders rather than from Scheme.
	s := schedconfigv1.GetPluginArgConversionScheme()
	obj, err := s.New(schedv1.SchemeGroupVersion.WithKind("ProvisionerArgs"))
	if err != nil {
		t.Fatalf("ProvisionerArgs is not in kube-scheduler's plugin args scheme: %v", err)
	}
	s.Default(obj)
	internal, err := s.ConvertToVersion(obj, schedconfig.SchemeGroupVersion)
	if err != nil {
		t.Fatal(err)
	}
	if got := internal.(*config.ProvisionerArgs).BatchMaxDuration.Duration; got != 10*time.Second {
		t.Errorf("defaulted batchMaxDuration = %v, want 10s", got)
	}
}
