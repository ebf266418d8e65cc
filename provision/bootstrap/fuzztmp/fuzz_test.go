package fuzztmp

import (
	"testing"

	"github.com/fleet-scheduler/fleet-scheduler/provision/bootstrap"
)

func FuzzParseJoin(f *testing.F) {
	for _, s := range []string{
		"kubeadm join 10.0.1.21:6443 --token abcdef.0123456789abcdef \\\n --discovery-token-ca-cert-hash sha256:00",
		"cat <<-EOF > /etc/default/kubelet\n\tKUBELET_EXTRA_ARGS='--max-pods=3'\n\tEOF\nkubeadm join a:1 --token $T",
		"x=$(( 1 + 2 )); y=`echo hi`; z=${x:-1} 2>&1 >>/dev/null <<<'s' & kubeadm join \"$x\" --token=${z}",
		"MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"//\"\n\n--//\nContent-Type: text/x-shellscript\n\nkubeadm join a:1 --token t\n--//--\n",
		"{ kubeadm join a:1; } | ( echo ) || ! true && $'x' $\"y\" \\",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, userData string) {
		j, err := bootstrap.ParseJoin(userData)
		if err == nil {
			_ = j.Validate()
		}
		_, _ = bootstrap.Render(bootstrap.UserDataInput{APIServerEndpoint: "a:1", NodeName: "n",
			Credentials: bootstrap.JoinCredentials{Token: "abcdef.0123456789abcdef", CACertHashes: []string{"sha256:0000000000000000000000000000000000000000000000000000000000000000"}},
			UserData:    userData, Labels: map[string]string{userData: userData}})
	})
}
