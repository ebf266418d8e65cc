package bootstrap_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"

	"github.com/fleet-scheduler/fleet-scheduler/hack/sandbox/join"
	"github.com/fleet-scheduler/fleet-scheduler/provision/bootstrap"
)

// FuzzParseJoin checks that no user data makes ParseJoin panic, and that
// whatever it accepts from Render comes back unchanged.
func FuzzParseJoin(f *testing.F) {
	for _, s := range []string{
		"kubeadm join 10.0.1.21:6443 --token abcdef.0123456789abcdef \\\n --discovery-token-ca-cert-hash sha256:00",
		"cat <<-EOF > /etc/default/kubelet\n\tKUBELET_EXTRA_ARGS='--max-pods=3'\n\tEOF\nkubeadm join a:1 --token $T",
		"x=$(( 1 + 2 )); y=`echo hi`; z=${x:-1} 2>&1 >>/dev/null <<<'s' & kubeadm join \"$x\" --token=${z}",
		mimeUserData("text/x-shellscript", "kubeadm join a:1 --token t"),
		"{ kubeadm join a:1; } | ( echo ) || ! true && $'x' $\"y\" \\",
	} {
		f.Add(s)
	}
	f.Add(func() string {
		in := testInput()
		s, _ := bootstrap.Render(in)
		return s
	}())
	f.Fuzz(func(t *testing.T, userData string) {
		j, err := join.ParseJoin(userData)
		if err != nil {
			return
		}
		_ = j.Validate()
		if strings.Contains(j.String(), "0123456789abcdef") && strings.Contains(userData, "abcdef.0123456789abcdef") {
			t.Errorf("String() leaks the token: %s", j)
		}
	})
}

// FuzzRender: no input makes Render panic, and user data it renders is
// what it was asked for: read back by the node simulator's parser
// (hack/sandbox/join, which reads a join the way kubeadm and the kubelet
// take its flags), it joins under the node name with the token and hash,
// the kubelet-settable label and the taint, whatever the EC2NodeClass
// userData around it.
func FuzzRender(f *testing.F) {
	f.Add("default-x7k2p", "team", "scan", "dedicated", "batch", "NoSchedule", "#!/bin/bash\necho hi\n", int32(110))
	f.Add("a", "node.kubernetes.io/instance-type", "m5.large", "k", "", "NoExecute", "", int32(0))
	f.Add("n.example.com", "example.com/x", "a-b_c.d", "x/y", "v", "PreferNoSchedule", mimeUserData("text/x-shellscript", "echo 'EOF'\nkubeadm reset"), int32(-1))
	f.Add("n", "k", "$(reboot)", "t", "`id`", "NoSchedule", "cat <<EOF\n$(x)\nEOF", int32(3))
	f.Fuzz(func(t *testing.T, nodeName, labelKey, labelValue, taintKey, taintValue, effect, userData string, maxPods int32) {
		if !utf8.ValidString(userData) {
			// The API server decodes JSON strings as UTF-8 (invalid bytes
			// become U+FFFD): an EC2NodeClass never carries such userData.
			// Render copies it as it is; the parser here, like any shell
			// parser that checks encoding, refuses it.
			return
		}
		in := testInput()
		in.NodeName = nodeName
		in.Labels = map[string]string{labelKey: labelValue}
		in.Taints = []corev1.Taint{{Key: taintKey, Value: taintValue, Effect: corev1.TaintEffect(effect)}}
		in.UserData = userData
		if maxPods != 0 {
			in.Kubelet = &bootstrap.KubeletConfig{MaxPods: &maxPods}
		}
		out, err := bootstrap.Render(in)
		if err != nil {
			return
		}
		if strings.Count(out, in.Credentials.Token) != 1 {
			t.Fatalf("the token appears %d times in the user data, want once (the join line)", strings.Count(out, in.Credentials.Token))
		}
		j, err := join.ParseJoin(out)
		if err != nil {
			t.Fatalf("rendered user data does not parse back: %v\n%s", err, out)
		}
		if j.NodeName != nodeName || j.Token != in.Credentials.Token || len(j.CACertHashes) != 1 || j.CACertHashes[0] != testHash {
			t.Fatalf("joins as %q with %s %v; want %q with the token and %s", j.NodeName, j, j.CACertHashes, nodeName, testHash)
		}
		if bootstrap.IsKubeletSettableLabel(labelKey) && j.Labels[labelKey] != labelValue {
			t.Fatalf("--node-labels %v lack %s=%s", j.Labels, labelKey, labelValue)
		}
		found := false
		for _, taint := range j.Taints {
			found = found || (taint.Key == taintKey && taint.Value == taintValue && string(taint.Effect) == effect)
		}
		if !found {
			t.Fatalf("--register-with-taints %v lack %s=%s:%s", j.Taints, taintKey, taintValue, effect)
		}
		if maxPods > 0 && (j.MaxPods == nil || *j.MaxPods != maxPods) {
			t.Fatalf("--max-pods %v, want %d", j.MaxPods, maxPods)
		}
	})
}
