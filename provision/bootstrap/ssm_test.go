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
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	bootstrapapi "k8s.io/cluster-bootstrap/token/api"
	clocktesting "k8s.io/utils/clock/testing"

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

// unsign removes a token's signature from cluster-info.
func unsign(t *testing.T, ctx context.Context, c *bootstraptest.Cluster, id string) {
	t.Helper()
	cm, err := c.Client.CoreV1().ConfigMaps(metav1.NamespacePublic).Get(ctx, bootstrapapi.ConfigMapClusterInfo, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	delete(cm.Data, bootstrapapi.JWSSignatureKeyPrefix+id)
	if _, err := c.Client.CoreV1().ConfigMaps(metav1.NamespacePublic).Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestSSMTokenSource(t *testing.T) {
	moto := env.StartMotoT(t)
	c := bootstraptest.StartCluster(t)
	var logs syncBuffer
	ctx := logContext(t, &logs)
	client := ssm.NewFromConfig(moto.AWSConfig())

	// The fixtures are written without the logging context: client-go
	// logs request bodies at this verbosity, and these carry secrets.
	fixtures := context.Background()
	expires := time.Now().Add(24 * time.Hour).UTC().Truncate(time.Second)
	c.CreateToken(t, fixtures, "seedab", "seedsecret000001", expires)
	c.CreateToken(t, fixtures, "expird", "expiredsecret001", time.Now().Add(-time.Hour))
	c.CreateToken(t, fixtures, "nosign", "nosigningsecret1", expires)
	if err := c.SignClusterInfo(fixtures); err != nil {
		t.Fatal(err)
	}
	// nosign may authenticate but not sign discovery: drop its signature
	// as the bootstrap signer would never have made it.
	unsign(t, fixtures, c, "nosign")
	hashHex := strings.TrimPrefix(c.CACertHashes[0], "sha256:")
	// Values that look like secrets and must never be printed.
	leaky := []string{"seedsecret000001", "expiredsecret001", "notinclustersec1", "wrongsecret00001", "SECRETSECRET", "seedsecret", "nosigningsecret1"}

	tests := []struct {
		name    string
		params  map[string]string // name -> value; token parameters are SecureString
		cfg     bootstrap.SSMConfig
		noKube  bool
		want    bootstrap.JoinCredentials
		wantErr []string // substrings
		// reason is the CredentialsError's; "" for another error.
		reason string
	}{
		{
			name:   "the runbook's layout: SecureString token, bare hex hash",
			params: map[string]string{seedTokenParam: "seedab.seedsecret000001", seedHashParam: hashHex},
			cfg:    bootstrap.SSMConfig{TokenParameter: seedTokenParam, CACertHashParameter: seedHashParam},
			want:   bootstrap.JoinCredentials{Token: "seedab.seedsecret000001", CACertHashes: c.CACertHashes},
		},
		{
			name:   "prefixed hashes, a trailing newline, several pins",
			params: map[string]string{"/t2/token": "seedab.seedsecret000001\n", "/t2/hash": "SHA256:" + strings.ToUpper(hashHex) + ", " + testHash2},
			cfg:    bootstrap.SSMConfig{TokenParameter: "/t2/token", CACertHashParameter: "/t2/hash"},
			want:   bootstrap.JoinCredentials{Token: "seedab.seedsecret000001", CACertHashes: []string{c.CACertHashes[0], testHash2}},
		},
		{
			name:   "no hash parameter: the CA comes from cluster-info",
			params: map[string]string{"/t3/token": "seedab.seedsecret000001"},
			cfg:    bootstrap.SSMConfig{TokenParameter: "/t3/token"},
			want:   bootstrap.JoinCredentials{Token: "seedab.seedsecret000001", CACertHashes: c.CACertHashes},
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
			reason:  bootstrap.ReasonTokenMalformed,
		},
		{
			name:    "a malformed token",
			params:  map[string]string{"/t6/token": "abcdef.SECRETSECRET", "/t6/hash": hashHex},
			cfg:     bootstrap.SSMConfig{TokenParameter: "/t6/token", CACertHashParameter: "/t6/hash"},
			wantErr: []string{`SSM parameter "/t6/token" does not hold a valid bootstrap token`},
			reason:  bootstrap.ReasonTokenMalformed,
		},
		{
			name:    "missing token parameter",
			params:  map[string]string{"/t7/hash": hashHex},
			cfg:     bootstrap.SSMConfig{TokenParameter: "/t7/token", CACertHashParameter: "/t7/hash"},
			wantErr: []string{`SSM parameter "/t7/token" not found`},
			reason:  bootstrap.ReasonParameterUnreadable,
		},
		{
			name:    "the token stored in the hash parameter",
			params:  map[string]string{"/t8/token": "seedab.seedsecret000001", "/t8/hash": "seedab.seedsecret000001"},
			cfg:     bootstrap.SSMConfig{TokenParameter: "/t8/token", CACertHashParameter: "/t8/hash"},
			wantErr: []string{`SSM parameter "/t8/hash"`, "64 hex characters"},
			reason:  bootstrap.ReasonCACertHashMalformed,
		},
		{
			name:    "the runbook's truncated hash",
			params:  map[string]string{"/t9/token": "seedab.seedsecret000001", "/t9/hash": "1234567890abcdef..."},
			cfg:     bootstrap.SSMConfig{TokenParameter: "/t9/token", CACertHashParameter: "/t9/hash"},
			wantErr: []string{`SSM parameter "/t9/hash"`},
			reason:  bootstrap.ReasonCACertHashMalformed,
		},
		{
			name:    "a token the cluster does not know (expired and cleaned up)",
			params:  map[string]string{"/t10/token": "notinc.notinclustersec1", "/t10/hash": hashHex},
			cfg:     bootstrap.SSMConfig{TokenParameter: "/t10/token", CACertHashParameter: "/t10/hash"},
			wantErr: []string{"bootstrap token notinc.<redacted> in SSM parameter /t10/token is expired or unknown", "kubeadm token create --ttl 24h", "aws ssm put-parameter --name /t10/token"},
			reason:  bootstrap.ReasonTokenRejected,
		},
		{
			name:    "a token whose secret does not match",
			params:  map[string]string{"/t11/token": "seedab.wrongsecret00001", "/t11/hash": hashHex},
			cfg:     bootstrap.SSMConfig{TokenParameter: "/t11/token", CACertHashParameter: "/t11/hash"},
			wantErr: []string{"bootstrap token seedab.<redacted> in SSM parameter /t11/token is expired or unknown"},
			reason:  bootstrap.ReasonTokenRejected,
		},
		{
			name:    "an expired token",
			params:  map[string]string{"/t12/token": "expird.expiredsecret001", "/t12/hash": hashHex},
			cfg:     bootstrap.SSMConfig{TokenParameter: "/t12/token", CACertHashParameter: "/t12/hash"},
			wantErr: []string{"bootstrap token expird.<redacted> in SSM parameter /t12/token is expired or unknown"},
			reason:  bootstrap.ReasonTokenRejected,
		},
		{
			name:    "a CA hash of another cluster",
			params:  map[string]string{"/t13/token": "seedab.seedsecret000001", "/t13/hash": testHash2},
			cfg:     bootstrap.SSMConfig{TokenParameter: "/t13/token", CACertHashParameter: "/t13/hash"},
			wantErr: []string{"the CA cert hash in SSM parameter /t13/hash (" + testHash2 + ") pins no CA of kube-public/cluster-info (" + c.CACertHashes[0] + ")"},
			reason:  bootstrap.ReasonCACertHashMismatch,
		},
		{
			name:    "a token that cannot sign discovery",
			params:  map[string]string{"/t14/token": "nosign.nosigningsecret1", "/t14/hash": hashHex},
			cfg:     bootstrap.SSMConfig{TokenParameter: "/t14/token", CACertHashParameter: "/t14/hash"},
			wantErr: []string{"bootstrap token nosign.<redacted> in SSM parameter /t14/token has not signed kube-public/cluster-info (no jws-kubeconfig-nosign)"},
			reason:  bootstrap.ReasonTokenNotForJoining,
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
				if ce := bootstrap.AsCredentialsError(err); (ce == nil && tt.reason != "") || (ce != nil && ce.Reason != tt.reason) {
					t.Errorf("error %T %v: want reason %q", err, err, tt.reason)
				}
				if ok := src.Check(ctx); ok == nil || ok.Error() != err.Error() {
					t.Errorf("Check() = %v, want the same error as Credentials", ok)
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
		clk := clocktesting.NewFakePassiveClock(now)
		bootstrap.SetSSMClock(src, clk)
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
		clk.SetTime(now)
		burst()
		if n := counting.calls.Load(); n != 2 {
			t.Errorf("within the TTL: %d GetParameter calls, want 2", n)
		}
		now = now.Add(2 * time.Second)
		clk.SetTime(now)
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
		clk := clocktesting.NewFakePassiveClock(now)
		bootstrap.SetSSMClock(src, clk)
		for range 5 {
			if _, err := src.Credentials(ctx, "node-x"); err == nil {
				t.Fatal("no error for a missing parameter")
			}
		}
		if n := counting.calls.Load(); n != 1 {
			t.Errorf("5 failing launches made %d calls, want 1", n)
		}
		now = now.Add(11 * time.Second)
		clk.SetTime(now)
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
