package bootstrap_test

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	bootstrapapi "k8s.io/cluster-bootstrap/token/api"

	"github.com/fleet-scheduler/fleet-scheduler/provision/bootstrap"
	"github.com/fleet-scheduler/fleet-scheduler/provision/bootstrap/bootstraptest"
	"github.com/fleet-scheduler/fleet-scheduler/test/env"
)

// The runbook's parameter names.
const (
	seedTokenParam = "/sesacthon/dev/karpenter/bootstrap-token"
	seedHashParam  = "/sesacthon/dev/karpenter/ca-cert-hash"
)

// countingSSM counts the GetParameter calls that reach the real client.
type countingSSM struct {
	*ssm.Client
	calls atomic.Int32
}

func (c *countingSSM) GetParameter(ctx context.Context, in *ssm.GetParameterInput, opts ...func(*ssm.Options)) (*ssm.GetParameterOutput, error) {
	c.calls.Add(1)
	return c.Client.GetParameter(ctx, in, opts...)
}

func putParameter(t *testing.T, ctx context.Context, client *ssm.Client, name, value string, typ ssmtypes.ParameterType) {
	t.Helper()
	if _, err := client.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String(name), Value: aws.String(value), Type: typ, Overwrite: aws.Bool(true)}); err != nil {
		t.Fatalf("put-parameter %s: %v", name, err)
	}
}

// putTokenSecret writes a bootstrap token Secret as `kubeadm token create` would.
func putTokenSecret(t *testing.T, ctx context.Context, c *bootstraptest.Cluster, id, secret string, expires time.Time) {
	t.Helper()
	_, err := c.Client.CoreV1().Secrets(metav1.NamespaceSystem).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "bootstrap-token-" + id, Namespace: metav1.NamespaceSystem},
		Type:       bootstrapapi.SecretTypeBootstrapToken,
		StringData: map[string]string{
			bootstrapapi.BootstrapTokenIDKey:               id,
			bootstrapapi.BootstrapTokenSecretKey:           secret,
			bootstrapapi.BootstrapTokenExpirationKey:       expires.UTC().Format(time.RFC3339),
			bootstrapapi.BootstrapTokenUsageAuthentication: "true",
			bootstrapapi.BootstrapTokenUsageSigningKey:     "true",
			bootstrapapi.BootstrapTokenExtraGroupsKey:      bootstrap.DefaultNodeTokenGroup,
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
}

func TestSSMTokenSource(t *testing.T) {
	moto := env.StartMotoT(t)
	c := bootstraptest.StartCluster(t)
	var logs syncBuffer
	ctx := logContext(t, &logs)
	client := ssm.NewFromConfig(moto.AWSConfig())

	expires := time.Now().Add(24 * time.Hour).UTC().Truncate(time.Second)
	putTokenSecret(t, ctx, c, "seedab", "seedsecret000001", expires)
	putTokenSecret(t, ctx, c, "expird", "expiredsecret001", time.Now().Add(-time.Hour))
	hashHex := strings.TrimPrefix(c.CACertHashes[0], "sha256:")
	// Values that look like secrets and must never be printed.
	leaky := []string{"seedsecret000001", "expiredsecret001", "notinclustersec1", "wrongsecret00001", "SECRETSECRET", "seedsecret"}

	tests := []struct {
		name    string
		params  map[string]string // name -> value; token parameters are SecureString
		cfg     bootstrap.SSMConfig
		noKube  bool
		want    bootstrap.JoinCredentials
		wantErr []string // substrings
	}{
		{
			name:   "the runbook's layout: SecureString token, bare hex hash",
			params: map[string]string{seedTokenParam: "seedab.seedsecret000001", seedHashParam: hashHex},
			cfg:    bootstrap.SSMConfig{TokenParameter: seedTokenParam, CACertHashParameter: seedHashParam},
			want:   bootstrap.JoinCredentials{Token: "seedab.seedsecret000001", CACertHashes: c.CACertHashes, Expires: expires},
		},
		{
			name:   "prefixed hashes, a trailing newline, several pins",
			params: map[string]string{"/t2/token": "seedab.seedsecret000001\n", "/t2/hash": "SHA256:" + strings.ToUpper(hashHex) + ", " + testHash2},
			cfg:    bootstrap.SSMConfig{TokenParameter: "/t2/token", CACertHashParameter: "/t2/hash"},
			want:   bootstrap.JoinCredentials{Token: "seedab.seedsecret000001", CACertHashes: []string{c.CACertHashes[0], testHash2}, Expires: expires},
		},
		{
			name:   "no hash parameter: the CA comes from cluster-info",
			params: map[string]string{"/t3/token": "seedab.seedsecret000001"},
			cfg:    bootstrap.SSMConfig{TokenParameter: "/t3/token"},
			want:   bootstrap.JoinCredentials{Token: "seedab.seedsecret000001", CACertHashes: c.CACertHashes, Expires: expires},
		},
		{
			name:   "without a Kubernetes client there is no cluster check",
			params: map[string]string{"/t4/token": "notinc.notinclustersec1", "/t4/hash": hashHex},
			cfg:    bootstrap.SSMConfig{TokenParameter: "/t4/token", CACertHashParameter: "/t4/hash"},
			noKube: true,
			want:   bootstrap.JoinCredentials{Token: "notinc.notinclustersec1", CACertHashes: c.CACertHashes},
		},
		{
			name:    "the runbook's placeholder token",
			params:  map[string]string{"/t5/token": "abc123.xyz789", "/t5/hash": hashHex},
			cfg:     bootstrap.SSMConfig{TokenParameter: "/t5/token", CACertHashParameter: "/t5/hash"},
			wantErr: []string{`SSM parameter "/t5/token" does not hold a valid bootstrap token`},
		},
		{
			name:    "a malformed token",
			params:  map[string]string{"/t6/token": "abcdef.SECRETSECRET", "/t6/hash": hashHex},
			cfg:     bootstrap.SSMConfig{TokenParameter: "/t6/token", CACertHashParameter: "/t6/hash"},
			wantErr: []string{`SSM parameter "/t6/token" does not hold a valid bootstrap token`},
		},
		{
			name:    "missing token parameter",
			params:  map[string]string{"/t7/hash": hashHex},
			cfg:     bootstrap.SSMConfig{TokenParameter: "/t7/token", CACertHashParameter: "/t7/hash"},
			wantErr: []string{`SSM parameter "/t7/token" not found`},
		},
		{
			name:    "the token stored in the hash parameter",
			params:  map[string]string{"/t8/token": "seedab.seedsecret000001", "/t8/hash": "seedab.seedsecret000001"},
			cfg:     bootstrap.SSMConfig{TokenParameter: "/t8/token", CACertHashParameter: "/t8/hash"},
			wantErr: []string{`SSM parameter "/t8/hash"`, "64 hex characters"},
		},
		{
			name:    "the runbook's truncated hash",
			params:  map[string]string{"/t9/token": "seedab.seedsecret000001", "/t9/hash": "1234567890abcdef..."},
			cfg:     bootstrap.SSMConfig{TokenParameter: "/t9/token", CACertHashParameter: "/t9/hash"},
			wantErr: []string{`SSM parameter "/t9/hash"`},
		},
		{
			name:    "a token the cluster does not know (expired and cleaned up)",
			params:  map[string]string{"/t10/token": "notinc.notinclustersec1", "/t10/hash": hashHex},
			cfg:     bootstrap.SSMConfig{TokenParameter: "/t10/token", CACertHashParameter: "/t10/hash"},
			wantErr: []string{`bootstrap token notinc.<redacted> from SSM parameter "/t10/token"`, "no Secret kube-system/bootstrap-token-notinc", "kubeadm token create"},
		},
		{
			name:    "a token whose secret does not match",
			params:  map[string]string{"/t11/token": "seedab.wrongsecret00001", "/t11/hash": hashHex},
			cfg:     bootstrap.SSMConfig{TokenParameter: "/t11/token", CACertHashParameter: "/t11/hash"},
			wantErr: []string{"does not match Secret kube-system/bootstrap-token-seedab"},
		},
		{
			name:    "an expired token",
			params:  map[string]string{"/t12/token": "expird.expiredsecret001", "/t12/hash": hashHex},
			cfg:     bootstrap.SSMConfig{TokenParameter: "/t12/token", CACertHashParameter: "/t12/hash"},
			wantErr: []string{"expired at", "bootstrap-token-expird"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for name, value := range tt.params {
				typ := ssmtypes.ParameterTypeString
				if strings.HasSuffix(name, "token") {
					typ = ssmtypes.ParameterTypeSecureString
				}
				putParameter(t, ctx, client, name, value, typ)
			}
			cfg := tt.cfg
			if !tt.noKube {
				cfg.Client = c.Client
			}
			src, err := bootstrap.NewSSMTokenSource(client, cfg)
			if err != nil {
				t.Fatal(err)
			}
			got, err := src.Credentials(ctx, "node-1")
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatalf("Credentials() = %s, want an error", got)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q lacks %q", err, w)
					}
				}
				for _, s := range append(leaky, "xyz789") {
					if strings.Contains(err.Error(), s) {
						t.Errorf("error leaks %q: %v", s, err)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("Credentials() error = %v", err)
			}
			if got.Token != tt.want.Token || strings.Join(got.CACertHashes, ",") != strings.Join(tt.want.CACertHashes, ",") || !got.Expires.Equal(tt.want.Expires) {
				t.Errorf("Credentials() = %s, want %s", got, tt.want)
			}
		})
	}

	t.Run("a burst of launches costs one read per parameter until the cache expires", func(t *testing.T) {
		counting := &countingSSM{Client: client}
		src, err := bootstrap.NewSSMTokenSource(counting, bootstrap.SSMConfig{TokenParameter: seedTokenParam, CACertHashParameter: seedHashParam, Client: c.Client})
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		bootstrap.SetSSMClock(src, func() time.Time { return now })
		burst := func() {
			var wg sync.WaitGroup
			for range 30 {
				wg.Go(func() {
					if _, err := src.Credentials(ctx, "node-x"); err != nil {
						t.Error(err)
					}
				})
			}
			wg.Wait()
		}
		burst()
		if n := counting.calls.Load(); n != 2 {
			t.Errorf("30 launches made %d GetParameter calls, want 2", n)
		}
		now = now.Add(bootstrap.DefaultSSMCacheTTL - time.Second)
		burst()
		if n := counting.calls.Load(); n != 2 {
			t.Errorf("within the TTL: %d GetParameter calls, want 2", n)
		}
		now = now.Add(2 * time.Second)
		burst()
		if n := counting.calls.Load(); n != 4 {
			t.Errorf("after the TTL: %d GetParameter calls, want 4", n)
		}
		src.Invalidate()
		burst()
		if n := counting.calls.Load(); n != 6 {
			t.Errorf("after Invalidate: %d GetParameter calls, want 6", n)
		}
	})

	t.Run("a failing parameter is not read again for every launch", func(t *testing.T) {
		counting := &countingSSM{Client: client}
		src, err := bootstrap.NewSSMTokenSource(counting, bootstrap.SSMConfig{TokenParameter: "/absent", CACertHashParameter: seedHashParam})
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		bootstrap.SetSSMClock(src, func() time.Time { return now })
		for range 5 {
			if _, err := src.Credentials(ctx, "node-x"); err == nil {
				t.Fatal("no error for a missing parameter")
			}
		}
		if n := counting.calls.Load(); n != 1 {
			t.Errorf("5 failing launches made %d calls, want 1", n)
		}
		now = now.Add(11 * time.Second)
		_, _ = src.Credentials(ctx, "node-x")
		if n := counting.calls.Load(); n != 2 {
			t.Errorf("after the error cache: %d calls, want 2", n)
		}
	})

	t.Run("configuration errors", func(t *testing.T) {
		if _, err := bootstrap.NewSSMTokenSource(client, bootstrap.SSMConfig{}); err == nil {
			t.Error("no token parameter accepted")
		}
		if _, err := bootstrap.NewSSMTokenSource(client, bootstrap.SSMConfig{TokenParameter: "/x"}); err == nil {
			t.Error("no way to find the CA hash accepted")
		}
		src, err := bootstrap.NewTokenSource(bootstrap.Config{SSM: bootstrap.SSMConfig{TokenParameter: seedTokenParam}}, c.Client, client)
		if _, ok := src.(*bootstrap.SSMTokenSource); err != nil || !ok {
			t.Errorf("NewTokenSource with an SSM parameter = %T, %v", src, err)
		}
		src, err = bootstrap.NewTokenSource(bootstrap.Config{}, c.Client, nil)
		if _, ok := src.(*bootstrap.MintedTokenSource); err != nil || !ok {
			t.Errorf("NewTokenSource without SSM = %T, %v", src, err)
		}
	})

	for _, s := range leaky {
		if strings.Contains(logs.String(), s) {
			t.Fatalf("the logs carry %q:\n%s", s, logs.String())
		}
	}
	if !strings.Contains(logs.String(), "Read bootstrap token from SSM") {
		t.Errorf("nothing was logged:\n%s", logs.String())
	}
}
