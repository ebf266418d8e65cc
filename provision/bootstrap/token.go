package bootstrap

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/kubernetes"
	bootstraputil "k8s.io/cluster-bootstrap/token/util"
)

// TokenSource hands out the credentials a new node uses to run `kubeadm join`.
type TokenSource interface {
	// Credentials returns a bootstrap token and the CA public key pins for
	// the node that will register as nodeName.
	Credentials(ctx context.Context, nodeName string) (JoinCredentials, error)
}

// Revoker is implemented by token sources that own their tokens: they
// delete them by ID once the node has registered or its claim is gone.
type Revoker interface {
	Revoke(ctx context.Context, tokenIDs []string) error
}

// JoinCredentials is what `kubeadm join` needs besides the endpoint.
//
// It formats itself with the token's secret redacted (fmt's %v, %+v, %#v, %s
// and logr), so logging it by accident leaks nothing. Read Token directly
// only to render user data.
type JoinCredentials struct {
	// Token is the bootstrap token, "<id>.<secret>".
	Token string
	// CACertHashes are the CA public key pins, each "sha256:<64 hex>".
	CACertHashes []string
	// Expires is when the token stops working; zero if unknown.
	Expires time.Time
}

// TokenID returns the public half of the token ("abcdef" of "abcdef.0123456789abcdef").
func (c JoinCredentials) TokenID() string { return TokenID(c.Token) }

// String formats the credentials without the token's secret.
func (c JoinCredentials) String() string {
	exp := "unknown"
	if !c.Expires.IsZero() {
		exp = c.Expires.UTC().Format(time.RFC3339)
	}
	return fmt.Sprintf("{Token:%s CACertHashes:%v Expires:%s}", RedactToken(c.Token), c.CACertHashes, exp)
}

// GoString formats the credentials for %#v without the token's secret.
func (c JoinCredentials) GoString() string { return "bootstrap.JoinCredentials" + c.String() }

// MarshalLog implements logr.Marshaler so structured loggers never see the secret.
func (c JoinCredentials) MarshalLog() any {
	return struct {
		TokenID      string    `json:"tokenID"`
		CACertHashes []string  `json:"caCertHashes"`
		Expires      time.Time `json:"expires,omitzero"`
	}{c.TokenID(), c.CACertHashes, c.Expires}
}

var _ logr.Marshaler = JoinCredentials{}

// Validate checks that the token is a well-formed bootstrap token and that
// there is at least one well-formed CA hash. Its errors never contain the token.
func (c JoinCredentials) Validate() error {
	if c.Token == "" {
		return errors.New("no bootstrap token")
	}
	if !bootstraputil.IsValidBootstrapToken(c.Token) {
		return errors.New("bootstrap token is malformed (want [a-z0-9]{6}.[a-z0-9]{16})")
	}
	if len(c.CACertHashes) == 0 {
		return errors.New("no discovery CA cert hash")
	}
	for _, h := range c.CACertHashes {
		if _, err := NormalizeCACertHash(h); err != nil {
			return err
		}
	}
	return nil
}

// TokenID returns the part of a bootstrap token before the dot: the public
// token ID. It returns "" when the token has no dot or a malformed ID, so a
// stray secret is never echoed.
func TokenID(token string) string {
	id, _, ok := strings.Cut(token, ".")
	if !ok || !bootstraputil.IsValidBootstrapTokenID(id) {
		return ""
	}
	return id
}

// RedactToken returns "<id>.<redacted>" for a token, or "<redacted>" when no
// valid ID can be shown. Use it wherever a token must be mentioned.
func RedactToken(token string) string {
	if token == "" {
		return `""`
	}
	if id := TokenID(token); id != "" {
		return id + ".<redacted>"
	}
	return "<redacted>"
}

// NormalizeCACertHash accepts a CA public key pin with or without the
// "sha256:" prefix (the runbook stores it without) and returns it as
// "sha256:<lowercase hex>", the form `kubeadm join` takes. Its errors do not
// echo the value: a misfiled parameter might hold a token instead.
func NormalizeCACertHash(h string) (string, error) {
	h = strings.TrimSpace(h)
	value := h
	if format, rest, ok := strings.Cut(h, ":"); ok {
		if !strings.EqualFold(format, "sha256") {
			return "", errors.New("CA cert hash: unknown format before ':', want sha256:<64 hex characters>")
		}
		value = rest
	}
	if len(value) != 64 {
		return "", fmt.Errorf("CA cert hash: want 64 hex characters (a SHA-256), got %d characters", len(value))
	}
	if _, err := hex.DecodeString(value); err != nil {
		return "", errors.New("CA cert hash: not hexadecimal")
	}
	return "sha256:" + strings.ToLower(value), nil
}

// normalizeCACertHashes normalizes a list, dropping duplicates and keeping order.
func normalizeCACertHashes(in []string) ([]string, error) {
	out := make([]string, 0, len(in))
	seen := map[string]bool{}
	for _, h := range in {
		n, err := NormalizeCACertHash(h)
		if err != nil {
			return nil, err
		}
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out, nil
}

// Config selects and configures a token source. It mirrors the bootstrap
// settings of the Provisioner plugin args.
type Config struct {
	// SSM reads the token (and CA hash) from SSM Parameter Store, as the
	// runbook does. Used when SSM.TokenParameter is set.
	SSM SSMConfig
	// Minted creates a short-lived token per node. Used when no SSM token
	// parameter is configured: the secure default.
	Minted MintedConfig
}

// NewTokenSource returns the SSM source when an SSM token parameter is
// configured and the minted source otherwise. ssmClient may be nil when no
// SSM parameter is configured.
func NewTokenSource(cfg Config, kube kubernetes.Interface, ssmClient SSMGetParameterAPI) (TokenSource, error) {
	if cfg.SSM.TokenParameter != "" {
		if ssmClient == nil {
			return nil, errors.New("an SSM token parameter is configured but there is no SSM client")
		}
		if cfg.SSM.Client == nil {
			cfg.SSM.Client = kube
		}
		return NewSSMTokenSource(ssmClient, cfg.SSM)
	}
	return NewMintedTokenSource(kube, cfg.Minted)
}

// lock is a mutex whose Lock gives up when the context ends.
type lock chan struct{}

func newLock() lock { return make(lock, 1) }

func (l lock) Lock(ctx context.Context) error {
	select {
	case l <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (l lock) Unlock() { <-l }
