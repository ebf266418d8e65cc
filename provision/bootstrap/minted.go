package bootstrap

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"
	bootstrapapi "k8s.io/cluster-bootstrap/token/api"
	bootstraputil "k8s.io/cluster-bootstrap/token/util"
	"k8s.io/klog/v2"
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
)

// MintedConfig configures the minted token source.
type MintedConfig struct {
	// TTL is the token lifetime; DefaultTokenTTL when zero. Set it to the
	// registration TTL: a node that has not joined by then never will.
	TTL time.Duration
	// ExtraGroups are the token's auth-extra-groups; [DefaultNodeTokenGroup]
	// when empty.
	ExtraGroups []string
	// ClusterInfo overrides the CA (and so the CA hash) read from
	// kube-public/cluster-info.
	ClusterInfo ClusterInfoOverrides
}

// MintedTokenSource creates one kubeadm-style bootstrap token Secret per
// node in kube-system, as `kubeadm token create` would, and reuses it while
// at least half its lifetime is left, so a retried launch does not mint
// twice. Revoke deletes it once the node registered; expired ones are deleted
// by kube-controller-manager's tokencleaner.
type MintedTokenSource struct {
	client kubernetes.Interface
	cfg    MintedConfig
	now    func() time.Time
	mu     lock
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
	if cfg.TTL < time.Minute {
		return nil, fmt.Errorf("token TTL %s is too short to boot and join; use at least 1m", cfg.TTL)
	}
	if len(cfg.ExtraGroups) == 0 {
		cfg.ExtraGroups = []string{DefaultNodeTokenGroup}
	}
	for _, g := range cfg.ExtraGroups {
		if err := bootstraputil.ValidateBootstrapGroupName(g); err != nil {
			return nil, err
		}
	}
	return &MintedTokenSource{client: client, cfg: cfg, now: time.Now, mu: newLock()}, nil
}

// Credentials returns the node's token, minting one if it has none that is
// good for at least half the TTL, and the CA hashes from cluster-info.
func (m *MintedTokenSource) Credentials(ctx context.Context, nodeName string) (JoinCredentials, error) {
	logger := klog.FromContext(ctx).WithValues("node", nodeName)
	if errs := validation.IsDNS1123Subdomain(nodeName); len(errs) > 0 {
		return JoinCredentials{}, fmt.Errorf("node name %q: %s", nodeName, strings.Join(errs, "; "))
	}
	ci, err := DiscoverClusterInfo(ctx, m.client, m.cfg.ClusterInfo)
	if err != nil {
		return JoinCredentials{}, err
	}
	if err := m.mu.Lock(ctx); err != nil {
		return JoinCredentials{}, err
	}
	defer m.mu.Unlock()

	now := m.now()
	existing, err := m.nodeTokens(ctx, nodeName)
	if err != nil {
		return JoinCredentials{}, err
	}
	var best *JoinCredentials
	for i := range existing {
		t := existing[i]
		switch {
		case !now.Before(t.expires):
			// Expired: the tokencleaner would delete it too; tidy up now.
			if err := m.deleteSecret(ctx, t.secretName); err != nil {
				logger.V(2).Info("Could not delete an expired bootstrap token", "secret", t.secretName, "err", err)
			}
		case t.expires.Sub(now) >= m.cfg.TTL/2 && (best == nil || t.expires.After(best.Expires)):
			best = &JoinCredentials{Token: t.token, Expires: t.expires}
		}
	}
	if best != nil {
		best.CACertHashes = ci.CACertHashes
		logger.V(4).Info("Reusing the node's bootstrap token", "credentials", *best)
		return *best, nil
	}

	for attempt := 1; ; attempt++ {
		creds, secretName, err := m.mint(ctx, nodeName, now)
		if apierrors.IsAlreadyExists(err) && attempt < mintAttempts {
			continue // a token ID collision; draw again
		}
		if err != nil {
			return JoinCredentials{}, fmt.Errorf("creating bootstrap token Secret %s/%s for node %s: %w", metav1.NamespaceSystem, secretName, nodeName, err)
		}
		creds.CACertHashes = ci.CACertHashes
		logger.V(2).Info("Minted bootstrap token", "secret", secretName, "credentials", creds)
		return creds, nil
	}
}

// Revoke deletes every token minted for the node. Call it once the node has
// registered: its kubelet has a client certificate by then.
func (m *MintedTokenSource) Revoke(ctx context.Context, nodeName string) error {
	if err := m.mu.Lock(ctx); err != nil {
		return err
	}
	defer m.mu.Unlock()
	tokens, err := m.nodeTokens(ctx, nodeName)
	if err != nil {
		return err
	}
	var errs []error
	for _, t := range tokens {
		if err := m.deleteSecret(ctx, t.secretName); err != nil {
			errs = append(errs, fmt.Errorf("deleting bootstrap token Secret %s/%s: %w", metav1.NamespaceSystem, t.secretName, err))
			continue
		}
		klog.FromContext(ctx).V(2).Info("Revoked bootstrap token", "node", nodeName, "secret", t.secretName)
	}
	return errors.Join(errs...)
}

func (m *MintedTokenSource) deleteSecret(ctx context.Context, name string) error {
	err := m.client.CoreV1().Secrets(metav1.NamespaceSystem).Delete(ctx, name, metav1.DeleteOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
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
	if _, err := m.client.CoreV1().Secrets(metav1.NamespaceSystem).Create(ctx, obj, metav1.CreateOptions{}); err != nil {
		return JoinCredentials{}, name, err
	}
	return JoinCredentials{Token: token, Expires: expires}, name, nil
}

type nodeToken struct {
	secretName string
	token      string
	expires    time.Time
}

// nodeTokens lists the tokens minted for a node. Secrets that are not
// well-formed tokens are skipped: the apiserver would not accept them either.
func (m *MintedTokenSource) nodeTokens(ctx context.Context, nodeName string) ([]nodeToken, error) {
	sel := labels.SelectorFromSet(labels.Set{LabelManagedBy: ManagedByValue, LabelTokenNode: nodeLabelValue(nodeName)})
	list, err := m.client.CoreV1().Secrets(metav1.NamespaceSystem).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return nil, fmt.Errorf("listing bootstrap token Secrets of node %s: %w", nodeName, err)
	}
	var out []nodeToken
	for i := range list.Items {
		s := &list.Items[i]
		if s.Type != bootstrapapi.SecretTypeBootstrapToken || s.Annotations[AnnotationTokenNode] != nodeName || s.DeletionTimestamp != nil {
			continue
		}
		token := bootstraputil.TokenFromIDAndSecret(string(s.Data[bootstrapapi.BootstrapTokenIDKey]), string(s.Data[bootstrapapi.BootstrapTokenSecretKey]))
		if !bootstraputil.IsValidBootstrapToken(token) || s.Name != bootstraputil.BootstrapTokenSecretName(TokenID(token)) {
			continue
		}
		expires, err := secretExpiration(s.Data)
		if err != nil || expires.IsZero() {
			continue
		}
		out = append(out, nodeToken{secretName: s.Name, token: token, expires: expires})
	}
	return out, nil
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
