package bootstrap_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	sandboxjoin "github.com/fleet-scheduler/fleet-scheduler/hack/sandbox/join"
	"github.com/fleet-scheduler/fleet-scheduler/provision/bootstrap"
	"github.com/fleet-scheduler/fleet-scheduler/provision/bootstrap/bootstraptest"
	"github.com/fleet-scheduler/fleet-scheduler/test/env"
)

// TestJoinWithKubeadmDiscovery proves the credentials work the way a node
// uses them: render the user data, read the join back out of it, and run
// kubeadm's own token discovery against a real apiserver whose cluster-info
// is signed for the token.
func TestJoinWithKubeadmDiscovery(t *testing.T) {
	c := bootstraptest.StartCluster(t)
	moto := env.StartMotoT(t)
	var logs syncBuffer
	ctx := logContext(t, &logs)

	minted, err := bootstrap.NewMintedTokenSource(c.Client, bootstrap.MintedConfig{})
	if err != nil {
		t.Fatal(err)
	}
	ci, err := bootstrap.DiscoverClusterInfo(ctx, c.Client, bootstrap.ClusterInfoOverrides{})
	if err != nil {
		t.Fatal(err)
	}
	if ci.Endpoint != c.Endpoint {
		t.Fatalf("cluster-info endpoint %s, want %s", ci.Endpoint, c.Endpoint)
	}

	// The runbook's way: a token made on the control plane
	// (`kubeadm token create`, here by the minted source for a throwaway
	// name) stored in SSM with its CA hash as bare hex.
	seed, err := minted.Credentials(ctx, "runbook-token")
	if err != nil {
		t.Fatal(err)
	}
	ssmClient := ssm.NewFromConfig(moto.AWSConfig())
	putParameter(t, ctx, ssmClient, seedTokenParam, seed.Token, ssmtypes.ParameterTypeSecureString)
	putParameter(t, ctx, ssmClient, seedHashParam, strings.TrimPrefix(c.CACertHashes[0], "sha256:"), ssmtypes.ParameterTypeString)
	fromSSM, err := bootstrap.NewSSMTokenSource(ssmClient, bootstrap.SSMConfig{TokenParameter: seedTokenParam, CACertHashParameter: seedHashParam, Client: c.Client})
	if err != nil {
		t.Fatal(err)
	}

	revoked, err := minted.Credentials(ctx, "node-revoked")
	if err != nil {
		t.Fatal(err)
	}
	if err := minted.Revoke(ctx, []string{revoked.TokenID()}); err != nil {
		t.Fatal(err)
	}
	// Stand in for kube-controller-manager's bootstrap signer.
	if err := c.SignClusterInfo(ctx); err != nil {
		t.Fatal(err)
	}

	const short = 2 * time.Second // kubeadm polls for an unknown token's signature until this
	tests := []struct {
		name    string
		node    string
		creds   func(t *testing.T) bootstrap.JoinCredentials
		timeout time.Duration
		wantErr string
	}{
		{
			name: "minted token",
			node: "node-a",
			creds: func(t *testing.T) bootstrap.JoinCredentials {
				creds, err := minted.Credentials(ctx, "node-a")
				if err != nil {
					t.Fatal(err)
				}
				if err := c.SignClusterInfo(ctx); err != nil {
					t.Fatal(err)
				}
				return creds
			},
		},
		{
			name: "token and hash from SSM, as in the runbook",
			node: "node-ssm",
			creds: func(t *testing.T) bootstrap.JoinCredentials {
				creds, err := fromSSM.Credentials(ctx, "node-ssm")
				if err != nil {
					t.Fatal(err)
				}
				return creds
			},
		},
		{
			name: "wrong CA hash",
			node: "node-b",
			creds: func(t *testing.T) bootstrap.JoinCredentials {
				return bootstrap.JoinCredentials{Token: seed.Token, CACertHashes: []string{testHash2}}
			},
			wantErr: "cluster CA found in cluster-info ConfigMap is invalid: none of the public keys",
		},
		{
			name: "right token ID, wrong secret",
			node: "node-c",
			creds: func(t *testing.T) bootstrap.JoinCredentials {
				return bootstrap.JoinCredentials{Token: seed.TokenID() + ".0000000000000000", CACertHashes: c.CACertHashes}
			},
			wantErr: "failed to verify JWS signature",
		},
		{
			name: "unknown token",
			node: "node-d",
			creds: func(t *testing.T) bootstrap.JoinCredentials {
				return bootstrap.JoinCredentials{Token: "zzzzzz.0123456789abcdef", CACertHashes: c.CACertHashes}
			},
			timeout: short,
			wantErr: `could not find a JWS signature in the cluster-info ConfigMap for token ID "zzzzzz"`,
		},
		{
			name:    "revoked token",
			node:    "node-revoked",
			creds:   func(t *testing.T) bootstrap.JoinCredentials { return revoked },
			timeout: short,
			wantErr: "could not find a JWS signature",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			creds := tt.creds(t)
			userData, err := bootstrap.Render(bootstrap.UserDataInput{APIServerEndpoint: ci.Endpoint, Credentials: creds, NodeName: tt.node})
			if err != nil {
				t.Fatal(err)
			}
			join, err := sandboxjoin.ParseJoin(userData)
			if err != nil {
				t.Fatal(err)
			}
			timeout := tt.timeout
			if timeout == 0 {
				timeout = 30 * time.Second
			}
			start := time.Now()
			kubeconfig, err := sandboxjoin.Discover(ctx, join, timeout)
			t.Logf("discovery took %s", time.Since(start).Round(time.Millisecond))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Discover() error = %v, want %q", err, tt.wantErr)
				}
				if secret := strings.TrimPrefix(creds.Token, creds.TokenID()+"."); strings.Contains(err.Error(), secret) {
					t.Fatalf("Discover() error leaks the token secret: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Discover() error = %v", err)
			}
			kc := kubeconfig.Contexts[kubeconfig.CurrentContext]
			cluster, user := kubeconfig.Clusters[kc.Cluster], kubeconfig.AuthInfos[kc.AuthInfo]
			if cluster.Server != c.Server || string(cluster.CertificateAuthorityData) != string(c.CAData) {
				t.Errorf("discovered server %s (CA %d bytes), want %s", cluster.Server, len(cluster.CertificateAuthorityData), c.Server)
			}
			if user.Token != creds.Token {
				t.Error("the TLS bootstrap kubeconfig does not carry the token")
			}

			// The kubelet's TLS bootstrap authenticates with the token: it
			// must be a bootstrapper allowed to post a node CSR.
			cfg := &rest.Config{Host: cluster.Server, BearerToken: user.Token, TLSClientConfig: rest.TLSClientConfig{CAData: cluster.CertificateAuthorityData}}
			kube := kubernetes.NewForConfigOrDie(cfg)
			review, err := kube.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
			if err != nil {
				t.Fatalf("SelfSubjectReview with the token: %v", err)
			}
			ui := review.Status.UserInfo
			if ui.Username != "system:bootstrap:"+creds.TokenID() || !contains(ui.Groups, "system:bootstrappers") || !contains(ui.Groups, bootstrap.DefaultNodeTokenGroup) {
				t.Errorf("the token authenticates as %s %v", ui.Username, ui.Groups)
			}
			ssar, err := kube.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{
				ResourceAttributes: &authorizationv1.ResourceAttributes{Group: "certificates.k8s.io", Resource: "certificatesigningrequests", Verb: "create"},
			}}, metav1.CreateOptions{})
			if err != nil || !ssar.Status.Allowed {
				t.Errorf("the token may not create CSRs: %v %+v", err, ssar)
			}
		})
	}

	t.Run("revoking a node's token stops it authenticating", func(t *testing.T) {
		creds, err := minted.Credentials(ctx, "node-a")
		if err != nil {
			t.Fatal(err)
		}
		kube := kubernetes.NewForConfigOrDie(&rest.Config{Host: c.Server, BearerToken: creds.Token, TLSClientConfig: rest.TLSClientConfig{CAData: c.CAData}})
		// The apiserver knows a new token once its Secret cache has it.
		var authErr error
		_ = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			_, authErr = kube.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
			return authErr == nil, nil
		})
		if authErr != nil {
			t.Fatalf("before Revoke: %v", authErr)
		}
		if err := minted.Revoke(ctx, []string{creds.TokenID()}); err != nil {
			t.Fatal(err)
		}
		err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			_, err := kube.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
			return apierrors.IsUnauthorized(err), nil
		})
		if err != nil {
			t.Error("the revoked token still authenticates")
		}
	})

	if strings.Contains(logs.String(), strings.TrimPrefix(seed.Token, seed.TokenID()+".")) {
		t.Errorf("the logs carry a token secret:\n%s", logs.String())
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
