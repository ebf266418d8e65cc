package validation

import (
	"math"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/fleet-scheduler/fleet-scheduler/plugins/apis/config"
	"github.com/fleet-scheduler/fleet-scheduler/provision/ec2"
)

// valid returns defaulted args that pass, for cases to break one field of.
func valid() *config.ProvisionerArgs {
	return &config.ProvisionerArgs{
		ClusterName:              "sesacthon-dev",
		Bootstrap:                config.BootstrapArgs{TokenTTL: metav1.Duration{Duration: 30 * time.Minute}},
		BatchIdleDuration:        metav1.Duration{Duration: time.Second},
		BatchMaxDuration:         metav1.Duration{Duration: 10 * time.Second},
		RegistrationTTL:          metav1.Duration{Duration: 15 * time.Minute},
		VMMemoryOverheadPercent:  0.075,
		DisruptionInterval:       metav1.Duration{Duration: 10 * time.Second},
		AWSCallTimeouts:          config.AWSCallTimeouts{Default: metav1.Duration{Duration: 15 * time.Second}},
		UnregisteredNodesToPause: 3,
	}
}

// supportedOps is how field.NotSupported lists the AWS operations.
func supportedOps() string {
	quoted := make([]string, len(ec2.Operations))
	for i, op := range ec2.Operations {
		quoted[i] = `"` + op + `"`
	}
	return strings.Join(quoted, ", ")
}

func d(s string) metav1.Duration {
	v, err := time.ParseDuration(s)
	if err != nil {
		panic(err)
	}
	return metav1.Duration{Duration: v}
}

func TestValidateProvisionerArgs(t *testing.T) {
	const seedToken, seedHash = "/sesacthon/dev/karpenter/bootstrap-token", "/sesacthon/dev/karpenter/ca-cert-hash"
	tests := []struct {
		name   string
		modify func(*config.ProvisionerArgs)
		// want lists each error's full text; empty means valid.
		want []string
	}{
		{name: "defaults with a cluster name", modify: func(*config.ProvisionerArgs) {}},
		{name: "everything set the seed's way", modify: func(a *config.ProvisionerArgs) {
			a.Region, a.ClusterEndpoint = "ap-northeast-2", "10.0.1.21:6443"
			a.Bootstrap.TokenSSMParameter, a.Bootstrap.CACertHashSSMParameter = seedToken, seedHash
		}},
		{name: "https endpoint with a DNS name", modify: func(a *config.ProvisionerArgs) { a.ClusterEndpoint = "https://api.example.com:6443" }},
		{name: "https endpoint with a trailing slash", modify: func(a *config.ProvisionerArgs) { a.ClusterEndpoint = "https://api.example.com:6443/" }},
		{name: "IPv6 endpoint", modify: func(a *config.ProvisionerArgs) { a.ClusterEndpoint = "[fd00::1]:6443" }},
		{name: "flat SSM names", modify: func(a *config.ProvisionerArgs) {
			a.Bootstrap.TokenSSMParameter, a.Bootstrap.CACertHashSSMParameter = "bootstrap-token", "ca_cert.hash"
		}},
		{name: "zero memory overhead", modify: func(a *config.ProvisionerArgs) { a.VMMemoryOverheadPercent = 0 }},
		{name: "token TTL at lower bound", modify: func(a *config.ProvisionerArgs) { a.Bootstrap.TokenTTL = d("1m") }},
		{name: "token TTL at upper bound", modify: func(a *config.ProvisionerArgs) { a.Bootstrap.TokenTTL = d("1h") }},
		{name: "batch max equal to idle", modify: func(a *config.ProvisionerArgs) { a.BatchMaxDuration = d("1s") }},
		{name: "interruption queue named after the cluster", modify: func(a *config.ProvisionerArgs) { a.InterruptionQueue = "sesacthon-dev" }},
		{name: "interruption queue at 80 characters with _ and -", modify: func(a *config.ProvisionerArgs) { a.InterruptionQueue = "Karpenter_" + strings.Repeat("q-", 35) }},
		{name: "per-call deadlines", modify: func(a *config.ProvisionerArgs) {
			a.AWSCallTimeouts.PerCall = map[string]metav1.Duration{"CreateFleet": d("2m"), "ReceiveMessage": d("21s"), "DescribeInstances": d("1s")}
		}},
		{name: "FIFO interruption queue", modify: func(a *config.ProvisionerArgs) { a.InterruptionQueue = "sesacthon-dev.fifo" }},

		{name: "cluster name missing", modify: func(a *config.ProvisionerArgs) { a.ClusterName = "" },
			want: []string{`provisionerArgs.clusterName: Required value: names the cluster in EC2 tags and resource names`}},
		{name: "cluster name not a DNS label", modify: func(a *config.ProvisionerArgs) { a.ClusterName = "Dev_Cluster" },
			want: []string{`provisionerArgs.clusterName: Invalid value: "Dev_Cluster": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')`}},
		{name: "cluster name too long", modify: func(a *config.ProvisionerArgs) { a.ClusterName = strings.Repeat("a", 64) },
			want: []string{`provisionerArgs.clusterName: Invalid value: "` + strings.Repeat("a", 64) + `": must be no more than 63 characters`}},
		{name: "region not a DNS label", modify: func(a *config.ProvisionerArgs) { a.Region = "us east 1" },
			want: []string{`provisionerArgs.region: Invalid value: "us east 1": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')`}},
		{name: "endpoint without port", modify: func(a *config.ProvisionerArgs) { a.ClusterEndpoint = "10.0.1.21" },
			want: []string{`provisionerArgs.clusterEndpoint: Invalid value: "10.0.1.21": must be host:port or https://host:port`}},
		{name: "endpoint with http", modify: func(a *config.ProvisionerArgs) { a.ClusterEndpoint = "http://10.0.1.21:6443" },
			want: []string{`provisionerArgs.clusterEndpoint: Invalid value: "http://10.0.1.21:6443": scheme must be https`}},
		{name: "endpoint with a path", modify: func(a *config.ProvisionerArgs) { a.ClusterEndpoint = "https://10.0.1.21:6443/api" },
			want: []string{`provisionerArgs.clusterEndpoint: Invalid value: "https://10.0.1.21:6443/api": must be https://host:port with no user, path or query`}},
		{name: "endpoint port out of range", modify: func(a *config.ProvisionerArgs) { a.ClusterEndpoint = "10.0.1.21:70000" },
			want: []string{`provisionerArgs.clusterEndpoint: Invalid value: "10.0.1.21:70000": port must be a number in 1..65535`}},
		{name: "endpoint with a bad host", modify: func(a *config.ProvisionerArgs) { a.ClusterEndpoint = "api_server:6443" },
			want: []string{`provisionerArgs.clusterEndpoint: Invalid value: "api_server:6443": host must be an IP address or a DNS name`}},
		{name: "token parameter without hash parameter", modify: func(a *config.ProvisionerArgs) { a.Bootstrap.TokenSSMParameter = seedToken },
			want: []string{`provisionerArgs.bootstrap.caCertHashSSMParameter: Required value: set both SSM parameters or neither`}},
		{name: "hash parameter without token parameter", modify: func(a *config.ProvisionerArgs) { a.Bootstrap.CACertHashSSMParameter = seedHash },
			want: []string{`provisionerArgs.bootstrap.tokenSSMParameter: Required value: set both SSM parameters or neither`}},
		{name: "SSM name with a bad character", modify: func(a *config.ProvisionerArgs) {
			a.Bootstrap.TokenSSMParameter, a.Bootstrap.CACertHashSSMParameter = "/dev/boot strap", seedHash
		}, want: []string{`provisionerArgs.bootstrap.tokenSSMParameter: Invalid value: "/dev/boot strap": invalid character ' ': SSM parameter names use only a-z, A-Z, 0-9, '_', '.', '-' and '/'`}},
		{name: "hierarchical SSM name without leading slash", modify: func(a *config.ProvisionerArgs) {
			a.Bootstrap.TokenSSMParameter, a.Bootstrap.CACertHashSSMParameter = seedToken, "sesacthon/dev/ca-cert-hash"
		}, want: []string{`provisionerArgs.bootstrap.caCertHashSSMParameter: Invalid value: "sesacthon/dev/ca-cert-hash": a hierarchical SSM parameter name must start with '/'`}},
		{name: "SSM name with an empty segment", modify: func(a *config.ProvisionerArgs) {
			a.Bootstrap.TokenSSMParameter, a.Bootstrap.CACertHashSSMParameter = "/dev//token", seedHash
		}, want: []string{`provisionerArgs.bootstrap.tokenSSMParameter: Invalid value: "/dev//token": SSM parameter name has an empty path segment`}},
		{name: "SSM name too deep", modify: func(a *config.ProvisionerArgs) {
			a.Bootstrap.TokenSSMParameter, a.Bootstrap.CACertHashSSMParameter = strings.Repeat("/a", 16), seedHash
		}, want: []string{`provisionerArgs.bootstrap.tokenSSMParameter: Invalid value: "` + strings.Repeat("/a", 16) + `": SSM parameter hierarchies are at most 15 levels deep`}},
		{name: "SSM name too long", modify: func(a *config.ProvisionerArgs) {
			a.Bootstrap.TokenSSMParameter, a.Bootstrap.CACertHashSSMParameter = "/"+strings.Repeat("a", 2048), seedHash
		}, want: []string{`provisionerArgs.bootstrap.tokenSSMParameter: Too long: may not be more than 2048 bytes`}},
		{name: "token TTL too short", modify: func(a *config.ProvisionerArgs) { a.Bootstrap.TokenTTL = d("59s") },
			want: []string{`provisionerArgs.bootstrap.tokenTTL: Invalid value: "59s": must be between 1m0s and 1h0m0s`}},
		{name: "token TTL too long", modify: func(a *config.ProvisionerArgs) { a.Bootstrap.TokenTTL = d("61m") },
			want: []string{`provisionerArgs.bootstrap.tokenTTL: Invalid value: "1h1m0s": must be between 1m0s and 1h0m0s`}},
		{name: "a day-long token, as kubeadm token create makes", modify: func(a *config.ProvisionerArgs) { a.Bootstrap.TokenTTL = d("24h") },
			want: []string{`provisionerArgs.bootstrap.tokenTTL: Invalid value: "24h0m0s": must be between 1m0s and 1h0m0s`}},
		{name: "batch idle zero", modify: func(a *config.ProvisionerArgs) { a.BatchIdleDuration = d("0s") },
			want: []string{`provisionerArgs.batchIdleDuration: Invalid value: "0s": must be > 0`}},
		{name: "batch max below idle", modify: func(a *config.ProvisionerArgs) { a.BatchMaxDuration = d("500ms") },
			want: []string{`provisionerArgs.batchMaxDuration: Invalid value: "500ms": must be >= batchIdleDuration (1s)`}},
		{name: "registration TTL negative", modify: func(a *config.ProvisionerArgs) { a.RegistrationTTL = d("-1m") },
			want: []string{`provisionerArgs.registrationTTL: Invalid value: "-1m0s": must be > 0`}},
		{name: "disruption interval zero", modify: func(a *config.ProvisionerArgs) { a.DisruptionInterval = d("0s") },
			want: []string{`provisionerArgs.disruptionInterval: Invalid value: "0s": must be > 0`}},
		{name: "interruption queue given as a URL", modify: func(a *config.ProvisionerArgs) {
			a.InterruptionQueue = "https://sqs.us-east-1.amazonaws.com/123456789012/sesacthon-dev"
		}, want: []string{`provisionerArgs.interruptionQueue: Invalid value: "https://sqs.us-east-1.amazonaws.com/123456789012/sesacthon-dev": give the queue's name, not its URL`}},
		{name: "interruption queue with a bad character", modify: func(a *config.ProvisionerArgs) { a.InterruptionQueue = "sesacthon.dev" },
			want: []string{`provisionerArgs.interruptionQueue: Invalid value: "sesacthon.dev": invalid character '.': SQS queue names use only a-z, A-Z, 0-9, '-' and '_' (and a .fifo suffix)`}},
		{name: "interruption queue too long", modify: func(a *config.ProvisionerArgs) { a.InterruptionQueue = strings.Repeat("q", 81) },
			want: []string{`provisionerArgs.interruptionQueue: Too long: may not be more than 80 bytes`}},
		{name: "interruption queue only .fifo", modify: func(a *config.ProvisionerArgs) { a.InterruptionQueue = ".fifo" },
			want: []string{`provisionerArgs.interruptionQueue: Invalid value: ".fifo": an SQS queue name needs at least one character before .fifo`}},
		{name: "AWS call deadline zero", modify: func(a *config.ProvisionerArgs) { a.AWSCallTimeouts.Default = d("0s") },
			want: []string{`provisionerArgs.awsCallTimeouts.default: Invalid value: "0s": must be between 1s and 10m0s`}},
		{name: "per-call deadlines out of range, unknown or shorter than the long poll", modify: func(a *config.ProvisionerArgs) {
			a.AWSCallTimeouts.PerCall = map[string]metav1.Duration{"CreateFleet": d("11m"), "RunInstances": d("10s"), "ReceiveMessage": d("20s")}
		}, want: []string{
			`provisionerArgs.awsCallTimeouts.perCall[CreateFleet]: Invalid value: "11m0s": must be between 1s and 10m0s`,
			`provisionerArgs.awsCallTimeouts.perCall[ReceiveMessage]: Invalid value: "20s": must be longer than the interruption queue's 20s long poll`,
			`provisionerArgs.awsCallTimeouts.perCall[RunInstances]: Unsupported value: "RunInstances": supported values: ` + supportedOps(),
		}},
		{name: "unregistered nodes to pause zero", modify: func(a *config.ProvisionerArgs) { a.UnregisteredNodesToPause = 0 },
			want: []string{`provisionerArgs.unregisteredNodesToPause: Invalid value: 0: must be between 1 and 100`}},
		{name: "memory overhead of one", modify: func(a *config.ProvisionerArgs) { a.VMMemoryOverheadPercent = 1 },
			want: []string{`provisionerArgs.vmMemoryOverheadPercent: Invalid value: 1: must be in [0, 1)`}},
		{name: "memory overhead negative", modify: func(a *config.ProvisionerArgs) { a.VMMemoryOverheadPercent = -0.1 },
			want: []string{`provisionerArgs.vmMemoryOverheadPercent: Invalid value: -0.1: must be in [0, 1)`}},
		{name: "memory overhead NaN", modify: func(a *config.ProvisionerArgs) { a.VMMemoryOverheadPercent = math.NaN() },
			want: []string{`provisionerArgs.vmMemoryOverheadPercent: Invalid value: NaN: must be in [0, 1)`}},
		{name: "every bad field is named", modify: func(a *config.ProvisionerArgs) {
			a.ClusterName, a.BatchMaxDuration, a.VMMemoryOverheadPercent = "", d("500ms"), 2
		}, want: []string{
			`provisionerArgs.clusterName: Required value: names the cluster in EC2 tags and resource names`,
			`provisionerArgs.batchMaxDuration: Invalid value: "500ms": must be >= batchIdleDuration (1s)`,
			`provisionerArgs.vmMemoryOverheadPercent: Invalid value: 2: must be in [0, 1)`,
		}},
	}
	path := field.NewPath("provisionerArgs")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := valid()
			tc.modify(args)
			var got []string
			for _, e := range ProvisionerArgsErrors(path, args) {
				got = append(got, e.Error())
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("errors:\n got %q\nwant %q", got, tc.want)
			}
			// The aggregate the plugin returns must carry every one of them.
			err := ValidateProvisionerArgs(path, args)
			if (err != nil) != (len(tc.want) > 0) {
				t.Fatalf("ValidateProvisionerArgs() = %v, want errors %q", err, tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("aggregate %q lacks %q", err, w)
				}
			}
		})
	}
}
