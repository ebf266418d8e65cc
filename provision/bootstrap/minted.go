package bootstrap

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"
	bootstrapapi "k8s.io/cluster-bootstrap/token/api"
	bootstraputil "k8s.io/cluster-bootstrap/token/util"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
)

const (
	// DefaultTokenTTL is the lifetime of a minted token: long enough for an
	// instance to boot and join, short enough to be useless soon after.
	DefaultTokenTTL = 30 * time.Minute
	// DefaultNodeTokenGroup is the extra group of minted tokens. kubeadm init
	// binds it to CSR creation, CSR auto-approval and node reads, so
	// `kubeadm join` works with no further RBAC.
	DefaultNodeTokenGroup = "system:bootstrappers:kubeadm:default-node-token"

	// LabelManagedBy marks the token Secrets this package mints.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// ManagedByValue is the value of LabelManagedBy.
	ManagedByValue = "fleet-scheduler"
	// LabelTokenNode carries the node name a token was minted for (or a hash
	// of it when the name is not a valid label value).
	LabelTokenNode = "bootstrap.fleet-scheduler.io/node"
	// AnnotationTokenNode carries the full node name.
	AnnotationTokenNode = "bootstrap.fleet-scheduler.io/node-name"

	mintAttempts = 3

	// MinTokenTTL and MaxTokenTTL bound a minted token's lifetime: long
	// enough to boot and join, and never a long-lived credential.
	MinTokenTTL = time.Minute
	MaxTokenTTL = time.Hour
)

// MintedConfig configures the minted token source.
type MintedConfig struct {
	// TTL is the token lifetime (MinTokenTTL to MaxTokenTTL);
	// DefaultTokenTTL when zero. Set it to the registration TTL: a node
	// that has not joined by then never will.
	TTL time.Duration
	// ExtraGroups are the token's auth-extra-groups; [DefaultNodeTokenGroup]
	// when empty.
	ExtraGroups []string
	// ClusterInfo overrides the CA (and so the CA hash) read from
	// kube-public/cluster-info.
	ClusterInfo ClusterInfoOverrides
}

// MintedTokenSource creates a kubeadm-style bootstrap token Secret in
// kube-system for each launch, as `kubeadm token create` would. It never
// reads a Secret: it needs create and delete on Secrets and nothing more.
// The caller keeps each token's ID (its public half) on the NodeClaim and
// Revokes the IDs by name once the node has joined or the claim is gone;
// a token whose ID was lost (the process died between minting and
// recording it) expires after the TTL and kube-controller-manager's token
// cleaner deletes it.
type MintedTokenSource struct {
	client kubernetes.Interface
	cfg    MintedConfig
	clock  clock.PassiveClock
}

var (
	_ TokenSource = &MintedTokenSource{}
	_ Revoker     = &MintedTokenSource{}
)

// NewMintedTokenSource checks the configuration and returns the source.
func NewMintedTokenSource(client kubernetes.Interface, cfg MintedConfig) (*MintedTokenSource, error) {
	if client == nil {
		return nil, errors.New("no Kubernetes client to mint bootstrap tokens with")
	}
	if cfg.TTL == 0 {
		cfg.TTL = DefaultTokenTTL
	}
	if cfg.TTL < MinTokenTTL || cfg.TTL > MaxTokenTTL {
		return nil, fmt.Errorf("token TTL %s: must be between %s (to boot and join) and %s (a join token is not a long-lived credential)", cfg.TTL, MinTokenTTL, MaxTokenTTL)
	}
	if len(cfg.ExtraGroups) == 0 {
		cfg.ExtraGroups = []string{DefaultNodeTokenGroup}
	}
	for _, g := range cfg.ExtraGroups {
		if err := bootstraputil.ValidateBootstrapGroupName(g); err != nil {
			return nil, err
		}
	}
	return &MintedTokenSource{client: client, cfg: cfg, clock: clock.RealClock{}}, nil
}

// Credentials mints a token for the node and returns it with the CA
// hashes from cluster-info. Every call mints: a retried launch reuses the
// launch template an earlier attempt made (and so its token) instead of
// asking again.
func (m *MintedTokenSource) Credentials(ctx context.Context, nodeName string) (JoinCredentials, error) {
	if errs := validation.IsDNS1123Subdomain(nodeName); len(errs) > 0 {
		return JoinCredentials{}, fmt.Errorf("node name %q: %s", nodeName, strings.Join(errs, "; "))
	}
	ci, err := DiscoverClusterInfo(ctx, m.client, m.cfg.ClusterInfo)
	if err != nil {
		return JoinCredentials{}, err
	}
	for attempt := 1; ; attempt++ {
		creds, secretName, err := m.mint(ctx, nodeName, m.clock.Now())
		if apierrors.IsAlreadyExists(err) && attempt < mintAttempts {
			continue // a token ID collision; draw again
		}
		if err != nil {
			return JoinCredentials{}, fmt.Errorf("creating bootstrap token Secret %s/%s for node %s: %w", metav1.NamespaceSystem, secretName, nodeName, err)
		}
		creds.CACertHashes = ci.CACertHashes
		klog.FromContext(ctx).V(2).Info("Minted bootstrap token", "node", nodeName, "secret", secretName, "credentials", creds)
		return creds, nil
	}
}

// Revoke deletes the tokens with these IDs by name (bootstrap-token-<id>);
// one already gone is no error. Call it once the node has registered (its
// kubelet has a client certificate by then) or its claim is deleted.
func (m *MintedTokenSource) Revoke(ctx context.Context, tokenIDs []string) error {
	var errs []error
	for _, id := range tokenIDs {
		if !bootstraputil.IsValidBootstrapTokenID(id) {
			errs = append(errs, fmt.Errorf("%q is not a bootstrap token ID", id))
			continue
		}
		name := bootstraputil.BootstrapTokenSecretName(id)
		err := m.client.CoreV1().Secrets(metav1.NamespaceSystem).Delete(ctx, name, metav1.DeleteOptions{})
		switch {
		case apierrors.IsNotFound(err):
		case err != nil:
			errs = append(errs, fmt.Errorf("deleting bootstrap token Secret %s/%s: %w", metav1.NamespaceSystem, name, err))
		default:
			klog.FromContext(ctx).V(2).Info("Revoked bootstrap token", "secret", name)
		}
	}
	return errors.Join(errs...)
}

func (m *MintedTokenSource) mint(ctx context.Context, nodeName string, now time.Time) (JoinCredentials, string, error) {
	token, err := bootstraputil.GenerateBootstrapToken()
	if err != nil {
		return JoinCredentials{}, "", fmt.Errorf("generating a bootstrap token: %w", err)
	}
	id, secret, _ := strings.Cut(token, ".")
	expires := now.Add(m.cfg.TTL).UTC().Truncate(time.Second)
	name := bootstraputil.BootstrapTokenSecretName(id)
	obj := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Namespace:   metav1.NamespaceSystem,
			Labels:      map[string]string{LabelManagedBy: ManagedByValue, LabelTokenNode: nodeLabelValue(nodeName)},
			Annotations: map[string]string{AnnotationTokenNode: nodeName},
		},
		Type: bootstrapapi.SecretTypeBootstrapToken,
		Data: map[string][]byte{
			bootstrapapi.BootstrapTokenIDKey:               []byte(id),
			bootstrapapi.BootstrapTokenSecretKey:           []byte(secret),
			bootstrapapi.BootstrapTokenExpirationKey:       []byte(expires.Format(time.RFC3339)),
			bootstrapapi.BootstrapTokenUsageAuthentication: []byte("true"),
			bootstrapapi.BootstrapTokenUsageSigningKey:     []byte("true"),
			bootstrapapi.BootstrapTokenExtraGroupsKey:      []byte(strings.Join(m.cfg.ExtraGroups, ",")),
			bootstrapapi.BootstrapTokenDescriptionKey:      []byte(fmt.Sprintf("fleet-scheduler bootstrap token for node %s", nodeName)),
		},
	}
	// The request carries the token's secret: client-go logs request
	// bodies at high verbosity, so this one call logs nothing.
	quiet := klog.NewContext(ctx, logr.Discard())
	if _, err := m.client.CoreV1().Secrets(metav1.NamespaceSystem).Create(quiet, obj, metav1.CreateOptions{}); err != nil {
		return JoinCredentials{}, name, err
	}
	return JoinCredentials{Token: token, Expires: expires}, name, nil
}

// nodeLabelValue is the node name when it is a valid label value, else a
// stable hash of it (node names may be 253 characters, label values 63).
func nodeLabelValue(nodeName string) string {
	if len(validation.IsValidLabelValue(nodeName)) == 0 {
		return nodeName
	}
	sum := sha256.Sum256([]byte(nodeName))
	return "sha256-" + hex.EncodeToString(sum[:])[:48]
}
