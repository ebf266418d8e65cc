package bootstrap_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kubeadmapi "k8s.io/kubernetes/cmd/kubeadm/app/apis/kubeadm"
	kubeadmscheme "k8s.io/kubernetes/cmd/kubeadm/app/apis/kubeadm/scheme"
	kubeadmv1beta4 "k8s.io/kubernetes/cmd/kubeadm/app/apis/kubeadm/v1beta4"
	"k8s.io/kubernetes/cmd/kubeadm/app/util/config/strict"
	"k8s.io/utils/ptr"

	"github.com/fleet-scheduler/fleet-scheduler/provision/bootstrap"
)

const (
	testToken  = "abcdef.0123456789abcdef"
	testSecret = "0123456789abcdef"
	testHash   = "sha256:7c3f0f1b3b3d7e6f5a4c2b1a09f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6"
	testHash2  = "sha256:00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
)

func testInput() bootstrap.UserDataInput {
	return bootstrap.UserDataInput{
		APIServerEndpoint: "10.0.1.21:6443",
		Credentials:       bootstrap.JoinCredentials{Token: testToken, CACertHashes: []string{testHash}},
		NodeName:          "default-x7k2p",
	}
}

// renderMutated renders testInput as mutate (if any) changes it, and
// returns the input with the script.
func renderMutated(mutate func(in *bootstrap.UserDataInput)) (bootstrap.UserDataInput, string, error) {
	in := testInput()
	if mutate != nil {
		mutate(&in)
	}
	script, err := bootstrap.Render(in)
	return in, script, err
}

func TestRender(t *testing.T) {
	tests := []struct {
		name     string
		mutate   func(in *bootstrap.UserDataInput)
		want     []string // substrings, in this order
		notWant  []string
		wantErr  string
		errCheck func(error) bool
	}{
		{
			name: "minimal",
			want: []string{
				"#!/bin/bash\n",
				"set -euo pipefail\n",
				"printf '%s\\n' 'KUBELET_EXTRA_ARGS=--register-with-taints=karpenter.sh/unregistered:NoExecute' > /etc/default/kubelet\n",
				"install -d -m 0700 /var/lib/fleet-scheduler\ninstall -m 0600 /dev/null /var/lib/fleet-scheduler/kubeadm-join.yaml\n" +
					"cat > /var/lib/fleet-scheduler/kubeadm-join.yaml <<'FLEET_SCHEDULER_JOIN_CONFIG_EOF'\n" +
					"apiVersion: kubeadm.k8s.io/v1beta4\ndiscovery:\n  bootstrapToken:\n    apiServerEndpoint: 10.0.1.21:6443\n    caCertHashes:\n    - " + testHash + "\n" +
					"    token: abcdef.0123456789abcdef\nkind: JoinConfiguration\nnodeRegistration:\n  name: default-x7k2p\n  taints: null\n" +
					"FLEET_SCHEDULER_JOIN_CONFIG_EOF\n" +
					"kubeadm join --config /var/lib/fleet-scheduler/kubeadm-join.yaml\nrm -f /var/lib/fleet-scheduler/kubeadm-join.yaml\n",
			},
			// The token is in the 0600 file only, not on kubeadm's command line.
			notWant: []string{"EC2NodeClass userData\n", "--node-labels", "--token", "--discovery-token-ca-cert-hash"},
		},
		{
			name: "URL endpoint and upper-case hash are normalized",
			mutate: func(in *bootstrap.UserDataInput) {
				in.APIServerEndpoint = "https://api.example.com"
				in.Credentials.CACertHashes = []string{strings.ToUpper(strings.TrimPrefix(testHash, "sha256:")), testHash2}
			},
			want: []string{"apiServerEndpoint: api.example.com:443\n", "caCertHashes:\n    - " + testHash + "\n    - " + testHash2 + "\n"},
		},
		{
			name: "labels the kubelet may set, sorted; controller-only ones left out",
			mutate: func(in *bootstrap.UserDataInput) {
				in.Labels = map[string]string{
					"managed-by":                        "karpenter",
					"karpenter.sh/nodepool":             "default",
					"karpenter.sh/capacity-type":        "on-demand",
					"node.kubernetes.io/instance-type":  "t3.large",
					"topology.kubernetes.io/zone":       "ap-northeast-2a",
					"kubernetes.io/arch":                "amd64",
					"node-role.kubernetes.io/worker":    "",
					"node-restriction.kubernetes.io/ok": "no",
					"kubernetes.io/custom":              "no",
				}
			},
			want:    []string{"--node-labels=karpenter.sh/capacity-type=on-demand,karpenter.sh/nodepool=default,kubernetes.io/arch=amd64,managed-by=karpenter,node.kubernetes.io/instance-type=t3.large,topology.kubernetes.io/zone=ap-northeast-2a "},
			notWant: []string{"node-role.kubernetes.io", "node-restriction", "kubernetes.io/custom"},
		},
		{
			name: "NodePool taints and startup taints after the unregistered taint, deduplicated",
			mutate: func(in *bootstrap.UserDataInput) {
				in.Taints = []corev1.Taint{{Key: "dedicated", Value: "scan", Effect: corev1.TaintEffectNoSchedule}, bootstrap.UnregisteredTaint}
				in.StartupTaints = []corev1.Taint{{Key: "example.com/not-ready", Effect: corev1.TaintEffectNoExecute}}
			},
			want: []string{"--register-with-taints=karpenter.sh/unregistered:NoExecute,dedicated=scan:NoSchedule,example.com/not-ready:NoExecute'"},
		},
		{
			name: "kubelet settings become flags; eviction thresholds with < stay inside the quotes",
			mutate: func(in *bootstrap.UserDataInput) {
				in.Kubelet = &bootstrap.KubeletConfig{
					MaxPods:                 ptr.To[int32](58),
					ClusterDNS:              []string{"10.96.0.10"},
					SystemReserved:          map[string]string{"memory": "100Mi", "cpu": "100m"},
					EvictionHard:            map[string]string{"memory.available": "5%", "nodefs.available": "10%"},
					EvictionSoftGracePeriod: map[string]time.Duration{"memory.available": time.Minute},
					CPUCFSQuota:             ptr.To(false),
				}
			},
			want: []string{"--register-with-taints=karpenter.sh/unregistered:NoExecute --cluster-dns=10.96.0.10 --max-pods=58 --system-reserved=cpu=100m,memory=100Mi --eviction-hard=memory.available<5%,nodefs.available<10% --eviction-soft-grace-period=memory.available=1m0s --cpu-cfs-quota=false'"},
		},
		{
			name:   "user script with a shebang runs from a file before the join",
			mutate: func(in *bootstrap.UserDataInput) { in.UserData = "#!/bin/bash\necho hello\n" },
			want: []string{
				"# EC2NodeClass userData\nmkdir -p /var/lib/fleet-scheduler\ncat > /var/lib/fleet-scheduler/user-data-1 <<'FLEET_SCHEDULER_USER_DATA_EOF'\n#!/bin/bash\necho hello\nFLEET_SCHEDULER_USER_DATA_EOF\n",
				"chmod 0700 /var/lib/fleet-scheduler/user-data-1\n/var/lib/fleet-scheduler/user-data-1\n",
				"KUBELET_EXTRA_ARGS",
				"kubeadm join",
			},
		},
		{
			name:   "user script without a shebang runs with bash",
			mutate: func(in *bootstrap.UserDataInput) { in.UserData = "echo hello" },
			want:   []string{"<<'FLEET_SCHEDULER_USER_DATA_EOF'\necho hello\nFLEET_SCHEDULER_USER_DATA_EOF\n", "/bin/bash /var/lib/fleet-scheduler/user-data-1\n", "kubeadm join"},
		},
		{
			name: "a user script holding the heredoc delimiter gets another one",
			mutate: func(in *bootstrap.UserDataInput) {
				in.UserData = "cat <<FLEET_SCHEDULER_USER_DATA_EOF\nx\nFLEET_SCHEDULER_USER_DATA_EOF\n"
			},
			want: []string{"<<'FLEET_SCHEDULER_USER_DATA_EOF_2'\n"},
		},
		{
			name: "MIME multipart shell parts run in order",
			mutate: func(in *bootstrap.UserDataInput) {
				in.UserData = mimeUserData("text/x-shellscript", "#!/bin/bash\necho one\n", "text/x-shellscript", "echo two\n")
			},
			want: []string{"user-data-1 <<'FLEET_SCHEDULER_USER_DATA_EOF'\n#!/bin/bash\necho one\n", "user-data-2 <<'FLEET_SCHEDULER_USER_DATA_EOF'\necho two\n", "kubeadm join"},
		},
		{
			name: "MIME cloud-config part is refused",
			mutate: func(in *bootstrap.UserDataInput) {
				in.UserData = mimeUserData("text/x-shellscript", "echo one\n", "text/cloud-config", "#cloud-config\n")
			},
			wantErr: `MIME part 2 has content type "text/cloud-config", which is not supported`,
		},
		{
			name: "user data that joins itself is refused",
			mutate: func(in *bootstrap.UserDataInput) {
				in.UserData = "#!/bin/bash\nTOKEN=$(aws ssm get-parameter --name /x --with-decryption --query Parameter.Value --output text)\nsudo kubeadm join 10.0.1.21:6443 --token \"$TOKEN\"\n"
			},
			errCheck: func(err error) bool { return errors.Is(err, bootstrap.ErrUserDataJoins) },
		},
		{
			name: "a join only in a comment is fine",
			mutate: func(in *bootstrap.UserDataInput) {
				in.UserData = "#!/bin/bash\n# kubeadm join 10.0.1.21:6443 --token x\necho ok\n"
			},
			want: []string{"echo ok\n"},
		},
		{name: "missing token", mutate: func(in *bootstrap.UserDataInput) { in.Credentials.Token = "" }, wantErr: "no bootstrap token"},
		{name: "malformed token", mutate: func(in *bootstrap.UserDataInput) { in.Credentials.Token = "abc123.xyz789" }, wantErr: "bootstrap token is malformed"},
		{name: "missing endpoint", mutate: func(in *bootstrap.UserDataInput) { in.APIServerEndpoint = "" }, wantErr: "empty API server endpoint"},
		{name: "endpoint with a path", mutate: func(in *bootstrap.UserDataInput) { in.APIServerEndpoint = "https://a/b" }, wantErr: "cannot use a path"},
		{name: "missing CA hash", mutate: func(in *bootstrap.UserDataInput) { in.Credentials.CACertHashes = nil }, wantErr: "no discovery CA cert hash"},
		{name: "short CA hash", mutate: func(in *bootstrap.UserDataInput) { in.Credentials.CACertHashes = []string{"sha256:1234567890abcdef"} }, wantErr: "want 64 hex characters"},
		{name: "missing node name", mutate: func(in *bootstrap.UserDataInput) { in.NodeName = "" }, wantErr: "no node name"},
		{name: "hostile node name", mutate: func(in *bootstrap.UserDataInput) { in.NodeName = "a;reboot" }, wantErr: "node name"},
		{
			name:    "hostile label value",
			mutate:  func(in *bootstrap.UserDataInput) { in.Labels = map[string]string{"team": "x' --v=10 $(reboot) '"} },
			wantErr: `label "team" value`,
		},
		{
			name:    "hostile label key",
			mutate:  func(in *bootstrap.UserDataInput) { in.Labels = map[string]string{"a b;reboot": "x"} },
			wantErr: `label key "a b;reboot"`,
		},
		{
			name: "hostile taint value",
			mutate: func(in *bootstrap.UserDataInput) {
				in.Taints = []corev1.Taint{{Key: "k", Value: "$(reboot)", Effect: corev1.TaintEffectNoSchedule}}
			},
			wantErr: `taint "k" value`,
		},
		{
			name:    "unknown taint effect",
			mutate:  func(in *bootstrap.UserDataInput) { in.Taints = []corev1.Taint{{Key: "k", Effect: "Sometimes"}} },
			wantErr: `effect "Sometimes"`,
		},
		{
			name: "kubelet value with a quote",
			mutate: func(in *bootstrap.UserDataInput) {
				in.Kubelet = &bootstrap.KubeletConfig{KubeReserved: map[string]string{"cpu": "1'"}}
			},
			wantErr: "kubelet flag --kube-reserved",
		},
		{
			name:    "over EC2's 16 KiB",
			mutate:  func(in *bootstrap.UserDataInput) { in.UserData = "#!/bin/bash\n" + strings.Repeat("# padding\n", 1700) },
			wantErr: "over EC2's limit",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, got, err := renderMutated(tt.mutate)
			if tt.wantErr != "" || tt.errCheck != nil {
				if err == nil {
					t.Fatalf("Render() succeeded, want error; script:\n%s", got)
				}
				if tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Render() error = %q, want it to contain %q", err, tt.wantErr)
				}
				if tt.errCheck != nil && !tt.errCheck(err) {
					t.Fatalf("Render() error = %v, not the expected kind", err)
				}
				if strings.Contains(err.Error(), testSecret) {
					t.Fatalf("error leaks the token secret: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Render() error = %v", err)
			}
			if !strings.HasPrefix(got, "#!/bin/bash\n") {
				t.Errorf("script does not start with #!/bin/bash:\n%s", got)
			}
			rest := got
			for _, w := range tt.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("script lacks (in order) %q:\n%s", w, got)
				}
				rest = rest[i+len(w):]
			}
			for _, nw := range tt.notWant {
				if strings.Contains(got, nw) {
					t.Errorf("script contains %q:\n%s", nw, got)
				}
			}
			if n := strings.Count(got, in.Credentials.Token); n != 1 {
				t.Errorf("token appears %d times, want once (in the JoinConfiguration)", n)
			}
			if out, err := exec.Command("bash", "-n", "-c", got).CombinedOutput(); err != nil {
				t.Errorf("bash -n: %v: %s", err, out)
			}
		})
	}
}

// TestRenderedScriptRuns runs the rendered script with real bash in a
// sandbox (paths moved under a temporary directory, a fake kubeadm on PATH
// that records its arguments) and checks what each step did.
func TestRenderedScriptRuns(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	hostile := `it's "quoted" $(touch PWNED) ` + "`touch PWNED` ${HOME} \\ FLEET_SCHEDULER_USER_DATA_EOF"
	tests := []struct {
		name      string
		userData  string
		wantOrder []string // lines of the trace file
		rpm       bool
	}{
		{
			name:      "shebang script with hostile text",
			userData:  "#!/bin/bash\nset -eu\nprintf '%s\\n' " + bootstrap.ShellQuote(hostile) + " > \"$TRACE.echo\"\necho user-data >> \"$TRACE\"\n",
			wantOrder: []string{"user-data", "kubeadm"},
		},
		{
			name:      "no shebang, rpm layout",
			userData:  "echo user-data >> \"$TRACE\"",
			wantOrder: []string{"user-data", "kubeadm"},
			rpm:       true,
		},
		{
			name:      "MIME parts",
			userData:  mimeUserData("text/x-shellscript", "#!/bin/sh\necho part-1 >> \"$TRACE\"\n", "text/x-shellscript", "echo part-2 >> \"$TRACE\"\n"),
			wantOrder: []string{"part-1", "part-2", "kubeadm"},
		},
		{
			name:      "no user data",
			wantOrder: []string{"kubeadm"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			in := testInput()
			in.UserData = tt.userData
			in.Labels = map[string]string{"managed-by": "karpenter", "kubernetes.io/arch": "amd64"}
			in.Kubelet = &bootstrap.KubeletConfig{EvictionHard: map[string]string{"memory.available": "5%"}}
			script, err := bootstrap.Render(in)
			if err != nil {
				t.Fatal(err)
			}
			// Move every absolute path the script writes under root.
			var moves []string
			for _, p := range []string{bootstrap.UserDataDir, bootstrap.KubeletEnvFileRPM, bootstrap.KubeletEnvFile, bootstrap.KubeletEnvDirRPM, bootstrap.KubeletEnvDir} {
				moves = append(moves, p, root+p)
			}
			script = strings.NewReplacer(moves...).Replace(script)
			for _, d := range []string{"bin"} {
				if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if tt.rpm {
				if err := os.MkdirAll(filepath.Join(root, "etc/sysconfig"), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			trace := filepath.Join(root, "trace")
			// The fake kubeadm keeps a copy of the config it is given, and
			// its mode, before the script removes it.
			fake := "#!/bin/bash\necho kubeadm >> \"$TRACE\"\nprintf '%s\\n' \"$@\" > \"$TRACE.kubeadm\"\n" +
				"cp \"$3\" \"$TRACE.config\"\nstat -c %a \"$3\" > \"$TRACE.mode\"\n"
			if err := os.WriteFile(filepath.Join(root, "bin/kubeadm"), []byte(fake), 0o755); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command("bash", "-c", script)
			cmd.Dir = root
			cmd.Env = append(os.Environ(), "TRACE="+trace, "PATH="+filepath.Join(root, "bin")+":"+os.Getenv("PATH"))
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("script failed: %v\n%s\nscript:\n%s", err, out, script)
			}
			if got := readLines(t, trace); strings.Join(got, ",") != strings.Join(tt.wantOrder, ",") {
				t.Errorf("steps ran as %v, want %v", got, tt.wantOrder)
			}
			config := filepath.Join(root, bootstrap.JoinConfigFile)
			wantArgs := []string{"join", "--config", config}
			if got := readLines(t, trace+".kubeadm"); strings.Join(got, " ") != strings.Join(wantArgs, " ") {
				t.Errorf("kubeadm got %q, want %q", got, wantArgs)
			}
			if got := readLines(t, trace+".mode"); len(got) != 1 || got[0] != "600" {
				t.Errorf("the JoinConfiguration's mode was %v, want 600", got)
			}
			if _, err := os.Stat(config); !os.IsNotExist(err) {
				t.Errorf("the JoinConfiguration is still there after the join: %v", err)
			}
			if fi, err := os.Stat(filepath.Join(root, bootstrap.UserDataDir)); err != nil || fi.Mode().Perm() != 0o700 {
				t.Errorf("%s: %v, want mode 0700", bootstrap.UserDataDir, err)
			}
			checkJoinConfiguration(t, trace+".config")
			wantEnv := "KUBELET_EXTRA_ARGS=--node-labels=kubernetes.io/arch=amd64,managed-by=karpenter --register-with-taints=karpenter.sh/unregistered:NoExecute --eviction-hard=memory.available<5%"
			envFiles := []string{filepath.Join(root, bootstrap.KubeletEnvFile)}
			if tt.rpm {
				envFiles = append(envFiles, filepath.Join(root, bootstrap.KubeletEnvFileRPM))
			}
			for _, f := range envFiles {
				if got := readLines(t, f); len(got) != 1 || got[0] != wantEnv {
					t.Errorf("%s = %q, want %q", f, got, wantEnv)
				}
			}
			if strings.Contains(tt.userData, "$TRACE.echo") {
				if got, _ := os.ReadFile(trace + ".echo"); strings.TrimSuffix(string(got), "\n") != hostile {
					t.Errorf("user script printed %q, want %q", got, hostile)
				}
			}
			if _, err := os.Stat(filepath.Join(root, "PWNED")); err == nil {
				t.Error("a hostile string was executed")
			}
		})
	}
}

func TestShellQuoteWithBash(t *testing.T) {
	for _, s := range []string{
		"", "plain", "with space", "it's", `"double"`, "$(touch PWNED)", "`touch PWNED`", "${HOME}", `back\slash`,
		"new\nline", "glob*?[a]", "semi;colon&amp|pipe", "~tilde", "#hash", "!bang", "tab\there", "ünïcode",
	} {
		out, err := exec.Command("bash", "-c", "printf '%s' "+bootstrap.ShellQuote(s)).Output()
		if err != nil {
			t.Fatalf("bash with %q: %v", s, err)
		}
		if string(out) != s {
			t.Errorf("ShellQuote(%q) read back by bash as %q", s, out)
		}
	}
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

// mimeUserData builds a multipart/mixed document of (type, body) pairs.
func mimeUserData(typesAndBodies ...string) string {
	var b strings.Builder
	b.WriteString("MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"//\"\n\n")
	for i := 0; i+1 < len(typesAndBodies); i += 2 {
		b.WriteString("--//\nContent-Type: " + typesAndBodies[i] + "; charset=\"us-ascii\"\n\n" + typesAndBodies[i+1] + "\n")
	}
	b.WriteString("--//--\n")
	return b.String()
}

// checkJoinConfiguration decodes the JoinConfiguration kubeadm was given the
// way kubeadm decodes it (strictly, any supported version, to its internal
// type) and checks the join it describes.
func checkJoinConfiguration(t *testing.T, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	gvk := kubeadmv1beta4.SchemeGroupVersion.WithKind("JoinConfiguration")
	if err := strict.VerifyUnmarshalStrict([]*runtime.Scheme{kubeadmscheme.Scheme}, gvk, data); err != nil {
		t.Fatalf("kubeadm would refuse the JoinConfiguration: %v\n%s", err, data)
	}
	cfg := &kubeadmapi.JoinConfiguration{}
	if err := runtime.DecodeInto(kubeadmscheme.Codecs.UniversalDecoder(), data, cfg); err != nil {
		t.Fatal(err)
	}
	bt := cfg.Discovery.BootstrapToken
	if bt == nil || bt.Token != testToken || bt.APIServerEndpoint != "10.0.1.21:6443" || strings.Join(bt.CACertHashes, ",") != testHash ||
		cfg.Discovery.TLSBootstrapToken != testToken || cfg.NodeRegistration.Name != "default-x7k2p" || cfg.ControlPlane != nil {
		t.Errorf("JoinConfiguration decodes to discovery %+v, TLS bootstrap token set %v, node %q", bt, cfg.Discovery.TLSBootstrapToken != "", cfg.NodeRegistration.Name)
	}
}
