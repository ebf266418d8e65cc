package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"k8s.io/client-go/kubernetes"
	bootstrapapi "k8s.io/cluster-bootstrap/token/api"
	bootstraputil "k8s.io/cluster-bootstrap/token/util"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
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
	// Client, when set, is used to check, with a TokenReview, that the API
	// server accepts the token as a bootstrap token (an expired or deleted
	// token is the usual reason a runbook-style join fails), and in
	// kube-public/cluster-info that it signs discovery and that the CA
	// hashes pin its CA. No Secret is read; Expires stays unknown.
	Client kubernetes.Interface
	// ClusterInfo overrides the CA used when CACertHashParameter is empty.
	ClusterInfo ClusterInfoOverrides
}

// SSMTokenSource reads the join credentials from SSM Parameter Store. Every
// node gets the same token; the source does not own it, so it has no Revoke.
type SSMTokenSource struct {
	api   SSMGetParameterAPI
	cfg   SSMConfig
	clock clock.PassiveClock

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
	return &SSMTokenSource{api: api, cfg: cfg, clock: clock.RealClock{}, mu: newLock()}, nil
}

// Credentials returns the token and CA hashes from SSM, reusing a recent read.
func (s *SSMTokenSource) Credentials(ctx context.Context, nodeName string) (JoinCredentials, error) {
	if err := s.mu.Lock(ctx); err != nil {
		return JoinCredentials{}, err
	}
	defer s.mu.Unlock()
	now := s.clock.Now()
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
		return JoinCredentials{}, &CredentialsError{Parameter: s.cfg.TokenParameter, Reason: ReasonTokenMalformed, Message: fmt.Sprintf(
			"SSM parameter %q does not hold a valid bootstrap token (want [a-z0-9]{6}.[a-z0-9]{16}, as `kubeadm token create` prints); %s",
			s.cfg.TokenParameter, renewHint(s.cfg.TokenParameter))}
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
			return JoinCredentials{}, &CredentialsError{Parameter: s.cfg.CACertHashParameter, Reason: ReasonCACertHashMalformed,
				Message: fmt.Sprintf("SSM parameter %q holds no CA cert hash", s.cfg.CACertHashParameter)}
		}
		if creds.CACertHashes, err = normalizeCACertHashes(hashes); err != nil {
			return JoinCredentials{}, &CredentialsError{Parameter: s.cfg.CACertHashParameter, Reason: ReasonCACertHashMalformed,
				Message: fmt.Sprintf("SSM parameter %q: %v", s.cfg.CACertHashParameter, err)}
		}
	} else {
		ci, err := DiscoverClusterInfo(ctx, s.cfg.Client, s.cfg.ClusterInfo)
		if err != nil {
			return JoinCredentials{}, fmt.Errorf("CA cert hash (no SSM parameter configured for it): %w", err)
		}
		creds.CACertHashes = ci.CACertHashes
	}

	if s.cfg.Client != nil {
		if err := review(ctx, s.cfg.Client, creds, s.cfg.TokenParameter, s.cfg.CACertHashParameter); err != nil {
			return JoinCredentials{}, err
		}
	}
	return creds, nil
}

// getParameter reads one parameter, decrypted. Errors name the parameter and
// never carry its value.
func (s *SSMTokenSource) getParameter(ctx context.Context, name string) (string, error) {
	out, err := s.api.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name), WithDecryption: aws.Bool(true)})
	var notFound *ssmtypes.ParameterNotFound
	unreadable := func(format string, args ...any) error {
		return &CredentialsError{Parameter: name, Reason: ReasonParameterUnreadable, Message: fmt.Sprintf(format, args...)}
	}
	switch {
	case errors.As(err, &notFound):
		return "", unreadable("SSM parameter %q not found; store the join token there as the runbook does (aws ssm put-parameter --name %s ... --overwrite)", name, name)
	case err != nil:
		return "", fmt.Errorf("reading SSM parameter %q: %w", name, err)
	case out.Parameter == nil || aws.ToString(out.Parameter.Value) == "":
		return "", unreadable("SSM parameter %q is empty", name)
	}
	return strings.TrimSpace(aws.ToString(out.Parameter.Value)), nil
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
