package bootstrap_test

import (
	"fmt"
	"maps"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	"github.com/fleet-scheduler/fleet-scheduler/hack/sandbox/join"
	"github.com/fleet-scheduler/fleet-scheduler/provision/bootstrap"
)

func TestParseJoinRoundTrip(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(in *bootstrap.UserDataInput)
	}{
		{name: "minimal"},
		{
			name: "everything",
			mutate: func(in *bootstrap.UserDataInput) {
				in.APIServerEndpoint = "https://[fd00::1]:6443"
				in.Credentials.CACertHashes = []string{testHash, testHash2}
				in.NodeName = "ip-10-0-1-21.ap-northeast-2.compute.internal"
				in.Labels = map[string]string{"managed-by": "karpenter", "karpenter.sh/nodepool": "default", "node.kubernetes.io/instance-type": "t3.large", "kubernetes.io/foo": "dropped"}
				in.Taints = []corev1.Taint{{Key: "dedicated", Value: "scan", Effect: corev1.TaintEffectNoSchedule}}
				in.StartupTaints = []corev1.Taint{{Key: "example.com/agent", Effect: corev1.TaintEffectNoExecute}}
				in.Kubelet = &bootstrap.KubeletConfig{MaxPods: ptr.To[int32](35), EvictionHard: map[string]string{"memory.available": "5%"}}
			},
		},
		{
			name: "user script with its own KUBELET_EXTRA_ARGS and kubeadm words in a heredoc",
			mutate: func(in *bootstrap.UserDataInput) {
				in.Labels = map[string]string{"team": "scan"}
				in.UserData = "#!/bin/bash\necho 'KUBELET_EXTRA_ARGS=--node-labels=team=wrong' > /etc/default/kubelet\ncat <<'EOF' > /tmp/notes\nkubeadm join 1.2.3.4:6443 --token zzzzzz.zzzzzzzzzzzzzzzz\nEOF\n"
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, script, err := renderMutated(tt.mutate)
			if err != nil {
				t.Fatal(err)
			}
			got, err := join.ParseJoin(script)
			if err != nil {
				t.Fatalf("ParseJoin: %v\n%s", err, script)
			}
			endpoint, _ := bootstrap.NormalizeEndpoint(in.APIServerEndpoint)
			wantLabels, _ := bootstrap.KubeletSettableLabels(in.Labels)
			if len(wantLabels) == 0 {
				wantLabels = nil
			}
			wantTaints := append([]corev1.Taint{bootstrap.UnregisteredTaint}, append(in.Taints, in.StartupTaints...)...)
			var wantMaxPods *int32
			if in.Kubelet != nil {
				wantMaxPods = in.Kubelet.MaxPods
			}
			if got.APIServerEndpoint != endpoint || got.Token != in.Credentials.Token || got.TLSBootstrapToken != in.Credentials.Token ||
				!reflect.DeepEqual(got.CACertHashes, in.Credentials.CACertHashes) || got.NodeName != in.NodeName ||
				!maps.Equal(got.Labels, wantLabels) || !reflect.DeepEqual(got.Taints, wantTaints) || !reflect.DeepEqual(got.MaxPods, wantMaxPods) {
				t.Errorf("ParseJoin(Render(in)) =\n%v\nwant endpoint %s, hashes %v, node %s, labels %v, taints %v, maxPods %v", got, endpoint, in.Credentials.CACertHashes, in.NodeName, wantLabels, wantTaints, wantMaxPods)
			}
			if err := got.Validate(); err != nil {
				t.Errorf("Validate: %v", err)
			}
		})
	}
}

func TestParseJoinHandWritten(t *testing.T) {
	seedHash := "sha256:" + strings.Repeat("1234567890abcdef", 4)
	tests := []struct {
		name     string
		script   string
		want     join.JoinScript
		wantErr  string
		validErr string // Validate's error, if any
	}{
		{
			name: "runbook style with a continuation",
			script: "#!/bin/bash\nkubeadm join 10.0.1.21:6443 --token abcdef.0123456789abcdef \\\n" +
				"  --discovery-token-ca-cert-hash " + seedHash + "\n",
			want: join.JoinScript{APIServerEndpoint: "10.0.1.21:6443", Token: testToken, TLSBootstrapToken: testToken, CACertHashes: []string{seedHash}},
		},
		{
			name:     "the runbook's literal placeholder parses but does not validate",
			script:   "kubeadm join 10.0.1.21:6443 --token abc123.xyz789 \\\n  --discovery-token-ca-cert-hash sha256:1234567890abcdef...\n",
			want:     join.JoinScript{APIServerEndpoint: "10.0.1.21:6443", Token: "abc123.xyz789", TLSBootstrapToken: "abc123.xyz789", CACertHashes: []string{"sha256:1234567890abcdef..."}},
			validErr: "not a valid bootstrap token",
		},
		{
			name: "sudo, = forms, variables, repeated and comma-separated hashes",
			script: "#!/bin/bash\nset -e\nexport API=10.0.1.21:6443\nTOKEN='abcdef.0123456789abcdef'\nH1=" + testHash + "\n" +
				"# kubeadm join 1.1.1.1:1 --token commented.out\n" +
				"sudo -E /usr/bin/kubeadm join \"$API\" --token=\"${TOKEN}\" --discovery-token-ca-cert-hash=$H1,sha256:" + strings.Repeat("ab", 32) +
				" --discovery-token-ca-cert-hash " + testHash2 + " --node-name=n1 --v=5 --ignore-preflight-errors all && echo joined\n",
			want: join.JoinScript{APIServerEndpoint: "10.0.1.21:6443", Token: testToken, TLSBootstrapToken: testToken, NodeName: "n1",
				CACertHashes: []string{testHash, "sha256:" + strings.Repeat("ab", 32), testHash2}},
		},
		{
			name: "separate discovery and TLS bootstrap tokens, unsafe skip",
			script: "kubeadm join 10.0.1.21:6443 --discovery-token abcdef.0123456789abcdef --tls-bootstrap-token ghijkl.0123456789abcdef " +
				"--discovery-token-unsafe-skip-ca-verification",
			want: join.JoinScript{APIServerEndpoint: "10.0.1.21:6443", Token: testToken, TLSBootstrapToken: "ghijkl.0123456789abcdef", UnsafeSkipCAVerification: true},
		},
		{
			name: "kubelet flags from a heredoc env file, quoted for systemd",
			script: "cat <<EOF > /etc/default/kubelet\nKUBELET_EXTRA_ARGS=\"--node-labels=managed-by=karpenter,a=b --register-with-taints=dedicated=scan:NoSchedule --max-pods 17\"\nEOF\n" +
				"kubeadm join 10.0.1.21:6443 --token " + testToken + " --discovery-token-ca-cert-hash " + testHash + "\n",
			want: join.JoinScript{APIServerEndpoint: "10.0.1.21:6443", Token: testToken, TLSBootstrapToken: testToken, CACertHashes: []string{testHash},
				Labels:      map[string]string{"managed-by": "karpenter", "a": "b"},
				Taints:      []corev1.Taint{{Key: "dedicated", Value: "scan", Effect: corev1.TaintEffectNoSchedule}},
				MaxPods:     ptr.To[int32](17),
				KubeletArgs: []string{"--node-labels=managed-by=karpenter,a=b", "--register-with-taints=dedicated=scan:NoSchedule", "--max-pods", "17"}},
		},
		{
			name: "kubelet flags from echo, last write wins",
			script: "echo 'KUBELET_EXTRA_ARGS=--node-labels=x=1' > /etc/default/kubelet\necho \"KUBELET_EXTRA_ARGS=--node-labels=x=2\" > /etc/default/kubelet\n" +
				"if kubeadm join 10.0.1.21:6443 --token " + testToken + " --discovery-token-ca-cert-hash " + testHash + "; then echo ok; fi\n",
			want: join.JoinScript{APIServerEndpoint: "10.0.1.21:6443", Token: testToken, TLSBootstrapToken: testToken, CACertHashes: []string{testHash},
				Labels: map[string]string{"x": "2"}, KubeletArgs: []string{"--node-labels=x=2"}},
		},
		{
			name:   "MIME user data",
			script: mimeUserData("text/x-shellscript", "#!/bin/bash\nkubeadm join 10.0.1.21:6443 --token "+testToken+" --discovery-token-ca-cert-hash "+testHash+"\n"),
			want:   join.JoinScript{APIServerEndpoint: "10.0.1.21:6443", Token: testToken, TLSBootstrapToken: testToken, CACertHashes: []string{testHash}},
		},
		{name: "no join", script: "#!/bin/bash\necho hi\n# kubeadm join 1.2.3.4:6443 --token x\n", wantErr: "no `kubeadm join` command"},
		{name: "two joins", script: "kubeadm join a:1 --token " + testToken + "\nkubeadm join b:1 --token " + testToken + "\n", wantErr: "2 `kubeadm join` commands"},
		{name: "missing token", script: "kubeadm join 10.0.1.21:6443 --discovery-token-ca-cert-hash " + testHash, wantErr: "no token"},
		{name: "missing endpoint", script: "kubeadm join --token " + testToken + " --discovery-token-ca-cert-hash " + testHash, wantErr: "no API server endpoint"},
		{name: "flag without value", script: "kubeadm join 10.0.1.21:6443 --token", wantErr: "--token needs a value"},
		{
			name:    "token fetched from SSM at boot",
			script:  "TOKEN=$(aws ssm get-parameter --name /sesacthon/dev/karpenter/bootstrap-token --with-decryption --query Parameter.Value --output text)\nkubeadm join 10.0.1.21:6443 --token $TOKEN --discovery-token-ca-cert-hash " + testHash,
			wantErr: "--token comes from a shell expansion ($TOKEN)",
		},
		{
			name:    "token from a command substitution",
			script:  "kubeadm join 10.0.1.21:6443 --token \"$(cat /etc/token; echo)\" --discovery-token-ca-cert-hash " + testHash,
			wantErr: "--token comes from a shell expansion ($(cat /etc/token; echo))",
		},
		{name: "control plane join", script: "kubeadm join 10.0.1.21:6443 --token " + testToken + " --control-plane", wantErr: "--control-plane joins are not supported"},
		{
			name: "a hand-written JoinConfiguration written with tee from variables, its kubelet args overridden by KUBELET_EXTRA_ARGS",
			script: "echo 'KUBELET_EXTRA_ARGS=--node-labels=x=2' > /etc/default/kubelet\nAPI=10.0.1.21:6443\n" +
				"tee /etc/kubeadm/join.yaml >/dev/null <<EOF\napiVersion: kubeadm.k8s.io/v1beta4\nkind: JoinConfiguration\ndiscovery:\n  bootstrapToken:\n" +
				"    apiServerEndpoint: ${API}\n    token: " + testToken + "\n    caCertHashes: [" + testHash + "]\n  tlsBootstrapToken: ghijkl.0123456789abcdef\n" +
				"nodeRegistration:\n  name: n2\n  taints:\n  - {key: dedicated, value: scan, effect: NoSchedule}\n  kubeletExtraArgs:\n" +
				"  - {name: node-labels, value: x=1}\n  - {name: max-pods, value: \"9\"}\nEOF\n" +
				"kubeadm join --config /etc/kubeadm/join.yaml --ignore-preflight-errors=all\n",
			want: join.JoinScript{APIServerEndpoint: "10.0.1.21:6443", Token: testToken, TLSBootstrapToken: "ghijkl.0123456789abcdef", CACertHashes: []string{testHash},
				NodeName: "n2", ConfigFile: "/etc/kubeadm/join.yaml", Labels: map[string]string{"x": "2"}, MaxPods: ptr.To[int32](9),
				Taints: []corev1.Taint{{Key: "dedicated", Value: "scan", Effect: corev1.TaintEffectNoSchedule}}, KubeletArgs: []string{"--node-labels=x=2"}},
		},
		{name: "config file the user data does not write", script: "kubeadm join --config /etc/kubeadm/join.yaml", wantErr: "the user data writes no such file"},
		{
			name:    "config mixed with flags",
			script:  "cat > /j.yaml <<EOF\nx: y\nEOF\nkubeadm join 10.0.1.21:6443 --config /j.yaml --token " + testToken,
			wantErr: "does not mix --config with --token, 10.0.1.21:6443",
		},
		{
			name:    "config with a field kubeadm does not know",
			script:  "cat > /j.yaml <<EOF\napiVersion: kubeadm.k8s.io/v1beta4\nkind: JoinConfiguration\ndiscovery:\n  bootstrapToken:\n    token: " + testToken + "\n    tokn: x\nEOF\nkubeadm join --config /j.yaml",
			wantErr: `kubeadm would refuse it`,
		},
		{
			name:    "config that is no JoinConfiguration",
			script:  "cat > /j.yaml <<EOF\napiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\nEOF\nkubeadm join --config /j.yaml",
			wantErr: "is not a kubeadm JoinConfiguration",
		},
		{
			name:    "config whose token comes from the environment",
			script:  "cat > /j.yaml <<EOF\napiVersion: kubeadm.k8s.io/v1beta4\nkind: JoinConfiguration\ndiscovery:\n  bootstrapToken:\n    token: $TOKEN\nEOF\nkubeadm join --config /j.yaml",
			wantErr: "holds a shell expansion",
		},
		{
			name:    "config without an endpoint",
			script:  "cat > /j.yaml <<'EOF'\napiVersion: kubeadm.k8s.io/v1beta4\nkind: JoinConfiguration\ndiscovery:\n  bootstrapToken:\n    token: " + testToken + "\nEOF\nkubeadm join --config /j.yaml",
			wantErr: "no discovery.bootstrapToken.apiServerEndpoint",
		},
		{name: "unknown flag", script: "kubeadm join 10.0.1.21:6443 --token " + testToken + " --frobnicate", wantErr: "unknown kubeadm join flag --frobnicate"},
		{name: "unterminated quote", script: "kubeadm join '10.0.1.21:6443 --token " + testToken, wantErr: "unterminated single quote"},
		{name: "unclosed heredoc", script: "cat <<EOF\nkubeadm join", wantErr: "never closed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := join.ParseJoin(tt.script)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseJoin() error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseJoin() error = %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseJoin() =\n%#v\nwant\n%#v", got, tt.want)
			}
			err = got.Validate()
			switch {
			case tt.validErr == "" && err != nil:
				t.Errorf("Validate() = %v", err)
			case tt.validErr != "" && (err == nil || !strings.Contains(err.Error(), tt.validErr)):
				t.Errorf("Validate() = %v, want %q", err, tt.validErr)
			}
			if err != nil && (strings.Contains(err.Error(), "xyz789") || strings.Contains(err.Error(), testSecret)) {
				t.Errorf("Validate() error leaks the token secret: %v", err)
			}
		})
	}
}

func TestJoinScriptFormattingRedactsTokens(t *testing.T) {
	j := join.JoinScript{APIServerEndpoint: "10.0.1.21:6443", Token: testToken, TLSBootstrapToken: "ghijkl.fedcba9876543210"}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		if s := fmt.Sprintf(verb, j); strings.Contains(s, testSecret) || strings.Contains(s, "fedcba9876543210") || !strings.Contains(s, "abcdef.<redacted>") {
			t.Errorf("Sprintf(%s) = %s", verb, s)
		}
	}
}
