package bootstrap_test

import (
	"strings"
	"testing"

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
