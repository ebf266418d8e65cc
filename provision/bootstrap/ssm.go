package bootstrap

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	bootstrapapi "k8s.io/cluster-bootstrap/token/api"
	bootstraputil "k8s.io/cluster-bootstrap/token/util"
	"k8s.io/klog/v2"
)

// Defaults for the SSM token source.
const (
	// DefaultSSMCacheTTL is how long values read from SSM are reused, so a
	// burst of launches costs one GetParameter per parameter.
	DefaultSSMCacheTTL = time.Minute
	// ssmErrorCacheTTL is how long a failed read is remembered, so a wrong
	// parameter does not turn a burst of launches into a burst of SSM calls.
	ssmErrorCacheTTL = 10 * time.Second
)

// SSMGetParameterAPI is the part of the SSM client the token source uses;
// *ssm.Client implements it.
type SSMGetParameterAPI interface {
	GetParameter(ctx context.Context, params *ssm.GetParameterInput, optFns ...func(*ssm.Options)) (*ssm.GetParameterOutput, error)
}

var _ SSMGetParameterAPI = (*ssm.Client)(nil)

// SSMConfig names the SSM parameters holding the join credentials, as in the
// runbook:
//
//	aws ssm put-parameter --name /sesacthon/dev/karpenter/bootstrap-token --type SecureString --value <id>.<secret>
//	aws ssm put-parameter --name /sesacthon/dev/karpenter/ca-cert-hash   --type String       --value <64 hex>
type SSMConfig struct {
	// TokenParameter holds the bootstrap token "<id>.<secret>" (SecureString).
	TokenParameter string
	// CACertHashParameter holds the CA public key pin, 64 hex characters with
	// or without "sha256:"; several may be separated by commas. When empty,
	// the pins are computed from kube-public/cluster-info (needs Client).
	CACertHashParameter string
	// CacheTTL is how long values are reused; DefaultSSMCacheTTL when zero,
	// no caching when negative.
	CacheTTL time.Duration
	// Client, when set, is used to check that the token exists in the
	// cluster (Secret kube-system/bootstrap-token-<id>), matches, and has not
	// expired - the usual reason a runbook-style join fails - and to fill in
	// Expires. Without permission to read the Secret the check is skipped.
	Client kubernetes.Interface
	// ClusterInfo overrides the CA used when CACertHashParameter is empty.
	ClusterInfo ClusterInfoOverrides
}

// SSMTokenSource reads the join credentials from SSM Parameter Store. Every
// node gets the same token; the source does not own it, so it has no Revoke.
type SSMTokenSource struct {
	api SSMGetParameterAPI
	cfg SSMConfig
	now func() time.Time

	mu        lock
	creds     JoinCredentials
	err       error
	fetchedAt time.Time
}

var _ TokenSource = &SSMTokenSource{}

// NewSSMTokenSource checks the configuration and returns the source.
func NewSSMTokenSource(api SSMGetParameterAPI, cfg SSMConfig) (*SSMTokenSource, error) {
	if api == nil {
		return nil, errors.New("no SSM client")
	}
	if cfg.TokenParameter == "" {
		return nil, errors.New("no SSM token parameter name")
	}
	if cfg.CACertHashParameter == "" && cfg.Client == nil && len(cfg.ClusterInfo.CAData) == 0 {
		return nil, errors.New("no SSM CA cert hash parameter, no CA and no Kubernetes client to read kube-public/cluster-info: the CA hash cannot be found")
	}
	if cfg.CacheTTL == 0 {
		cfg.CacheTTL = DefaultSSMCacheTTL
	}
	return &SSMTokenSource{api: api, cfg: cfg, now: time.Now, mu: newLock()}, nil
}

// Credentials returns the token and CA hashes from SSM, reusing a recent read.
func (s *SSMTokenSource) Credentials(ctx context.Context, nodeName string) (JoinCredentials, error) {
	if err := s.mu.Lock(ctx); err != nil {
		return JoinCredentials{}, err
	}
	defer s.mu.Unlock()
	now := s.now()
	if !s.fetchedAt.IsZero() {
		age := now.Sub(s.fetchedAt)
		if s.err == nil && age < s.cfg.CacheTTL && (s.creds.Expires.IsZero() || now.Before(s.creds.Expires)) {
			return s.creds, nil
		}
		if s.err != nil && age < min(s.cfg.CacheTTL, ssmErrorCacheTTL) {
			return JoinCredentials{}, s.err
		}
	}
	creds, err := s.fetch(ctx)
	if err != nil && ctx.Err() != nil {
		// Our caller gave up; do not remember that as the parameters' state.
		return JoinCredentials{}, err
	}
	s.creds, s.err, s.fetchedAt = creds, err, now
	if err != nil {
		return JoinCredentials{}, err
	}
	klog.FromContext(ctx).V(2).Info("Read bootstrap token from SSM", "node", nodeName, "parameter", s.cfg.TokenParameter, "credentials", creds)
	return creds, nil
}

// Invalidate drops the cached values; the next Credentials reads SSM again.
func (s *SSMTokenSource) Invalidate() {
	_ = s.mu.Lock(context.Background())
	defer s.mu.Unlock()
	s.fetchedAt = time.Time{}
}

func (s *SSMTokenSource) fetch(ctx context.Context) (JoinCredentials, error) {
	token, err := s.getParameter(ctx, s.cfg.TokenParameter)
	if err != nil {
		return JoinCredentials{}, err
	}
	if !bootstraputil.IsValidBootstrapToken(token) {
		return JoinCredentials{}, fmt.Errorf("SSM parameter %q does not hold a valid bootstrap token (want [a-z0-9]{6}.[a-z0-9]{16}, as `kubeadm token create` prints)", s.cfg.TokenParameter)
	}
	creds := JoinCredentials{Token: token}

	if s.cfg.CACertHashParameter != "" {
		raw, err := s.getParameter(ctx, s.cfg.CACertHashParameter)
		if err != nil {
			return JoinCredentials{}, err
		}
		var hashes []string
		for _, h := range strings.FieldsFunc(raw, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\t' || r == '\r' }) {
			hashes = append(hashes, h)
		}
		if len(hashes) == 0 {
			return JoinCredentials{}, fmt.Errorf("SSM parameter %q holds no CA cert hash", s.cfg.CACertHashParameter)
		}
		if creds.CACertHashes, err = normalizeCACertHashes(hashes); err != nil {
			return JoinCredentials{}, fmt.Errorf("SSM parameter %q: %w", s.cfg.CACertHashParameter, err)
		}
	} else {
		ci, err := DiscoverClusterInfo(ctx, s.cfg.Client, s.cfg.ClusterInfo)
		if err != nil {
			return JoinCredentials{}, fmt.Errorf("CA cert hash (no SSM parameter configured for it): %w", err)
		}
		creds.CACertHashes = ci.CACertHashes
	}

	if s.cfg.Client != nil {
		if creds.Expires, err = checkTokenInCluster(ctx, s.cfg.Client, token, s.now()); err != nil {
			return JoinCredentials{}, fmt.Errorf("bootstrap token %s from SSM parameter %q: %w", RedactToken(token), s.cfg.TokenParameter, err)
		}
	}
	return creds, nil
}

// getParameter reads one parameter, decrypted. Errors name the parameter and
// never carry its value.
func (s *SSMTokenSource) getParameter(ctx context.Context, name string) (string, error) {
	out, err := s.api.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name), WithDecryption: aws.Bool(true)})
	var notFound *ssmtypes.ParameterNotFound
	switch {
	case errors.As(err, &notFound):
		return "", fmt.Errorf("SSM parameter %q not found", name)
	case err != nil:
		return "", fmt.Errorf("reading SSM parameter %q: %w", name, err)
	case out.Parameter == nil || aws.ToString(out.Parameter.Value) == "":
		return "", fmt.Errorf("SSM parameter %q is empty", name)
	}
	return strings.TrimSpace(aws.ToString(out.Parameter.Value)), nil
}

// checkTokenInCluster looks at the token's Secret the way the apiserver's
// bootstrap token authenticator does and returns its expiry. A caller
// without permission to read Secrets gets no check and a zero time.
func checkTokenInCluster(ctx context.Context, client kubernetes.Interface, token string, now time.Time) (time.Time, error) {
	id, secret, _ := strings.Cut(token, ".")
	name := bootstraputil.BootstrapTokenSecretName(id)
	sec, err := client.CoreV1().Secrets(metav1.NamespaceSystem).Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return time.Time{}, fmt.Errorf("no Secret %s/%s in the cluster: the token expired or was deleted; run `kubeadm token create` and update the parameter", metav1.NamespaceSystem, name)
	case apierrors.IsForbidden(err):
		klog.FromContext(ctx).V(2).Info("Not allowed to read the bootstrap token Secret; skipping the check", "secret", name)
		return time.Time{}, nil
	case err != nil:
		return time.Time{}, fmt.Errorf("reading Secret %s/%s: %w", metav1.NamespaceSystem, name, err)
	}
	if sec.Type != bootstrapapi.SecretTypeBootstrapToken {
		return time.Time{}, fmt.Errorf("Secret %s/%s has type %q, not %q", metav1.NamespaceSystem, name, sec.Type, bootstrapapi.SecretTypeBootstrapToken)
	}
	if subtle.ConstantTimeCompare(sec.Data[bootstrapapi.BootstrapTokenSecretKey], []byte(secret)) != 1 {
		return time.Time{}, fmt.Errorf("the secret does not match Secret %s/%s", metav1.NamespaceSystem, name)
	}
	for _, usage := range []string{bootstrapapi.BootstrapTokenUsageAuthentication, bootstrapapi.BootstrapTokenUsageSigningKey} {
		if string(sec.Data[usage]) != "true" {
			return time.Time{}, fmt.Errorf("Secret %s/%s does not allow %s, which kubeadm join needs", metav1.NamespaceSystem, name, usage)
		}
	}
	expires, err := secretExpiration(sec.Data)
	if err != nil {
		return time.Time{}, fmt.Errorf("Secret %s/%s: %w", metav1.NamespaceSystem, name, err)
	}
	if !expires.IsZero() && !now.Before(expires) {
		return time.Time{}, fmt.Errorf("expired at %s (Secret %s/%s); run `kubeadm token create` and update the parameter", expires.UTC().Format(time.RFC3339), metav1.NamespaceSystem, name)
	}
	return expires, nil
}

// secretExpiration parses the optional RFC3339 expiration of a token Secret.
func secretExpiration(data map[string][]byte) (time.Time, error) {
	raw := string(data[bootstrapapi.BootstrapTokenExpirationKey])
	if raw == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, raw)
	if err != nil {
		return time.Time{}, fmt.Errorf("unparseable %s %q", bootstrapapi.BootstrapTokenExpirationKey, raw)
	}
	return t, nil
}
