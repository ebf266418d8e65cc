package bootstrap_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	bootstrapapi "k8s.io/cluster-bootstrap/token/api"
	bootstraputil "k8s.io/cluster-bootstrap/token/util"

	"github.com/fleet-scheduler/fleet-scheduler/provision/bootstrap"
	"github.com/fleet-scheduler/fleet-scheduler/provision/bootstrap/bootstraptest"
	"github.com/fleet-scheduler/fleet-scheduler/test/env"
)

// tokenSecrets returns the bootstrap token Secrets minted for a node.
func tokenSecrets(t *testing.T, ctx context.Context, client kubernetes.Interface, nodeName string) []corev1.Secret {
	t.Helper()
	list, err := client.CoreV1().Secrets(metav1.NamespaceSystem).List(ctx, metav1.ListOptions{LabelSelector: bootstrap.LabelManagedBy + "=" + bootstrap.ManagedByValue})
	if err != nil {
		t.Fatal(err)
	}
	var out []corev1.Secret
	for _, s := range list.Items {
		if s.Annotations[bootstrap.AnnotationTokenNode] == nodeName {
			out = append(out, s)
		}
	}
	return out
}

func TestMintedTokenSource(t *testing.T) {
	c := bootstraptest.StartCluster(t)
	var logs syncBuffer
	ctx := logContext(t, &logs)
	var secrets []string // every secret minted, to look for in the logs

	now := time.Now().Truncate(time.Second) // whole seconds, like the Secret's expiration
	clock := func() time.Time { return now }
	m, err := bootstrap.NewMintedTokenSource(c.Client, bootstrap.MintedConfig{})
	if err != nil {
		t.Fatal(err)
	}
	bootstrap.SetMintedClock(m, clock)
	get := func(t *testing.T, node string) bootstrap.JoinCredentials {
		t.Helper()
		creds, err := m.Credentials(ctx, node)
		if err != nil {
			t.Fatalf("Credentials(%s): %v", node, err)
		}
		secrets = append(secrets, strings.TrimPrefix(creds.Token, creds.TokenID()+"."))
		return creds
	}

	t.Run("mints a kubeadm-style token", func(t *testing.T) {
		creds := get(t, "node-a")
		if !bootstraputil.IsValidBootstrapToken(creds.Token) {
			t.Fatalf("token %s is not a bootstrap token", creds)
		}
		if want := now.Add(bootstrap.DefaultTokenTTL).UTC().Truncate(time.Second); !creds.Expires.Equal(want) {
			t.Errorf("Expires = %v, want %v", creds.Expires, want)
		}
		if len(creds.CACertHashes) != 1 || creds.CACertHashes[0] != c.CACertHashes[0] {
			t.Errorf("CACertHashes = %v, want the cluster CA's %v", creds.CACertHashes, c.CACertHashes)
		}
		s, err := c.Client.CoreV1().Secrets(metav1.NamespaceSystem).Get(ctx, "bootstrap-token-"+creds.TokenID(), metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{
			bootstrapapi.BootstrapTokenIDKey:               creds.TokenID(),
			bootstrapapi.BootstrapTokenSecretKey:           strings.TrimPrefix(creds.Token, creds.TokenID()+"."),
			bootstrapapi.BootstrapTokenExpirationKey:       creds.Expires.Format(time.RFC3339),
			bootstrapapi.BootstrapTokenUsageAuthentication: "true",
			bootstrapapi.BootstrapTokenUsageSigningKey:     "true",
			bootstrapapi.BootstrapTokenExtraGroupsKey:      "system:bootstrappers:kubeadm:default-node-token",
			bootstrapapi.BootstrapTokenDescriptionKey:      "fleet-scheduler bootstrap token for node node-a",
		}
		for k, v := range want {
			if got := string(s.Data[k]); got != v {
				t.Errorf("Secret data %s = %q, want %q", k, got, v)
			}
		}
		if s.Type != bootstrapapi.SecretTypeBootstrapToken || s.Labels[bootstrap.LabelTokenNode] != "node-a" || s.Labels[bootstrap.LabelManagedBy] != "fleet-scheduler" {
			t.Errorf("Secret type %q labels %v", s.Type, s.Labels)
		}
	})

	t.Run("a retry for the same node reuses its token; another node gets its own", func(t *testing.T) {
		a1, a2 := get(t, "node-b"), get(t, "node-b")
		if a1.Token != a2.Token || !a1.Expires.Equal(a2.Expires) {
			t.Errorf("second call minted again: %s then %s", a1, a2)
		}
		if other := get(t, "node-c"); other.Token == a1.Token {
			t.Error("two nodes share a token")
		}
		if n := len(tokenSecrets(t, ctx, c.Client, "node-b")); n != 1 {
			t.Errorf("node-b has %d token Secrets, want 1", n)
		}
	})

	t.Run("a burst of launches for one node mints once", func(t *testing.T) {
		var wg sync.WaitGroup
		tokens := make([]string, 20)
		for i := range tokens {
			wg.Go(func() {
				creds, err := m.Credentials(ctx, "node-burst")
				if err != nil {
					t.Error(err)
					return
				}
				tokens[i] = creds.Token
			})
		}
		wg.Wait()
		for _, tok := range tokens[1:] {
			if tok != tokens[0] {
				t.Fatal("the burst got different tokens")
			}
		}
		if n := len(tokenSecrets(t, ctx, c.Client, "node-burst")); n != 1 {
			t.Errorf("node-burst has %d token Secrets, want 1", n)
		}
	})

	t.Run("mints anew when less than half the TTL is left and tidies expired ones", func(t *testing.T) {
		first := get(t, "node-d")
		now = now.Add(bootstrap.DefaultTokenTTL/2 + time.Second)
		second := get(t, "node-d")
		if second.Token == first.Token {
			t.Fatal("reused a token with less than half its TTL left")
		}
		if n := len(tokenSecrets(t, ctx, c.Client, "node-d")); n != 2 {
			t.Errorf("node-d has %d token Secrets, want 2 (the old one is still valid)", n)
		}
		now = first.Expires.Add(time.Second)
		if third := get(t, "node-d"); third.Token != second.Token {
			t.Error("did not reuse the fresh token")
		}
		left := tokenSecrets(t, ctx, c.Client, "node-d")
		if len(left) != 1 || left[0].Name != "bootstrap-token-"+second.TokenID() {
			t.Errorf("after the first token expired, node-d has %d Secrets, want only the second", len(left))
		}
	})

	t.Run("node names longer than a label value", func(t *testing.T) {
		long := strings.Repeat("n", 70) + ".ap-northeast-2.compute.internal"
		a, b := get(t, long), get(t, long)
		if a.Token != b.Token {
			t.Error("long node name: minted twice")
		}
		if s := tokenSecrets(t, ctx, c.Client, long); len(s) != 1 || !strings.HasPrefix(s[0].Labels[bootstrap.LabelTokenNode], "sha256-") {
			t.Errorf("long node name: %d Secrets, label %v", len(s), s)
		}
	})

	t.Run("revoke deletes the node's tokens only", func(t *testing.T) {
		get(t, "node-e")
		if err := m.Revoke(ctx, "node-e"); err != nil {
			t.Fatal(err)
		}
		if n := len(tokenSecrets(t, ctx, c.Client, "node-e")); n != 0 {
			t.Errorf("node-e still has %d token Secrets", n)
		}
		if n := len(tokenSecrets(t, ctx, c.Client, "node-b")); n != 1 {
			t.Errorf("revoking node-e touched node-b: %d Secrets", n)
		}
		if err := m.Revoke(ctx, "node-e"); err != nil {
			t.Errorf("second Revoke: %v", err)
		}
	})

	t.Run("bad input", func(t *testing.T) {
		if _, err := m.Credentials(ctx, "Not_A_Node"); err == nil || !strings.Contains(err.Error(), "node name") {
			t.Errorf("invalid node name: %v", err)
		}
		if _, err := bootstrap.NewMintedTokenSource(c.Client, bootstrap.MintedConfig{TTL: time.Second}); err == nil {
			t.Error("a 1s TTL was accepted")
		}
		if _, err := bootstrap.NewMintedTokenSource(c.Client, bootstrap.MintedConfig{ExtraGroups: []string{"system:masters"}}); err == nil {
			t.Error("a non-bootstrap group was accepted")
		}
	})

	for _, s := range secrets {
		if strings.Contains(logs.String(), s) {
			t.Fatalf("the logs carry a token secret:\n%s", logs.String())
		}
	}
	if !strings.Contains(logs.String(), "Minted bootstrap token") {
		t.Errorf("nothing was logged:\n%s", logs.String())
	}
}

func TestDiscoverClusterInfo(t *testing.T) {
	api := env.StartAPIServer(t)
	ctx := context.Background()
	if _, err := bootstrap.DiscoverClusterInfo(ctx, api.Client, bootstrap.ClusterInfoOverrides{}); err == nil || !strings.Contains(err.Error(), "no ConfigMap kube-public/cluster-info") {
		t.Fatalf("without cluster-info: %v", err)
	}
	m, err := bootstrap.NewMintedTokenSource(api.Client, bootstrap.MintedConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Credentials(ctx, "n"); err == nil || !strings.Contains(err.Error(), "cluster-info") {
		t.Errorf("minting without cluster-info: %v", err)
	}

	caPEM, _ := newCAPEM(t)
	otherCA, _ := newCAPEM(t)
	if err := bootstraptest.PublishClusterInfo(ctx, api.Client, "https://10.0.1.21:6443", caPEM); err != nil {
		t.Fatal(err)
	}
	hashes, _ := bootstrap.CACertHashes(caPEM)
	otherHashes, _ := bootstrap.CACertHashes(otherCA)
	tests := []struct {
		name       string
		overrides  bootstrap.ClusterInfoOverrides
		wantEP     string
		wantHashes []string
	}{
		{name: "discovered", wantEP: "10.0.1.21:6443", wantHashes: hashes},
		{name: "explicit endpoint wins", overrides: bootstrap.ClusterInfoOverrides{Endpoint: "https://api.internal:443"}, wantEP: "api.internal:443", wantHashes: hashes},
		{name: "explicit CA wins", overrides: bootstrap.ClusterInfoOverrides{CAData: otherCA}, wantEP: "10.0.1.21:6443", wantHashes: otherHashes},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ci, err := bootstrap.DiscoverClusterInfo(ctx, api.Client, tt.overrides)
			if err != nil {
				t.Fatal(err)
			}
			if ci.Endpoint != tt.wantEP || strings.Join(ci.CACertHashes, ",") != strings.Join(tt.wantHashes, ",") {
				t.Errorf("got %s %v, want %s %v", ci.Endpoint, ci.CACertHashes, tt.wantEP, tt.wantHashes)
			}
		})
	}

	cm, err := api.Client.CoreV1().ConfigMaps("kube-public").Get(ctx, "cluster-info", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	delete(cm.Data, "kubeconfig")
	if _, err := api.Client.CoreV1().ConfigMaps("kube-public").Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := bootstrap.DiscoverClusterInfo(ctx, api.Client, bootstrap.ClusterInfoOverrides{}); err == nil || !strings.Contains(err.Error(), `has no "kubeconfig" key`) {
		t.Errorf("cluster-info without kubeconfig: %v", err)
	}
	both := bootstrap.ClusterInfoOverrides{Endpoint: "10.0.0.1:6443", CAData: caPEM}
	if ci, err := bootstrap.DiscoverClusterInfo(ctx, api.Client, both); err != nil || ci.Endpoint != "10.0.0.1:6443" {
		t.Errorf("with both overrides the broken ConfigMap should not matter: %v %v", ci, err)
	}
}

// logContext returns a context whose logger writes, verbosely, to buf.
func logContext(t *testing.T, buf *syncBuffer) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	return withLogger(ctx, buf)
}
