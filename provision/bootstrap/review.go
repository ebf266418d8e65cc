package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/go-logr/logr"
	authnv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	bootstrapapi "k8s.io/cluster-bootstrap/token/api"
	"k8s.io/klog/v2"
)

// Reasons the join credentials in SSM cannot join a node, as the
// EC2NodeClass condition and the events name them.
const (
	// ReasonParameterUnreadable: an SSM parameter is missing, empty or
	// cannot be read.
	ReasonParameterUnreadable = "SSMParameterUnreadable"
	// ReasonTokenMalformed: the token parameter holds no bootstrap token.
	ReasonTokenMalformed = "BootstrapTokenMalformed"
	// ReasonTokenRejected: the API server does not accept the token: it
	// expired, was deleted, or never existed.
	ReasonTokenRejected = "BootstrapTokenRejected"
	// ReasonTokenNotForJoining: the token authenticates, but not as a
	// bootstrap token, or cannot sign cluster-info for discovery.
	ReasonTokenNotForJoining = "BootstrapTokenNotForJoining"
	// ReasonCACertHashMalformed: the hash parameter holds no CA hash.
	ReasonCACertHashMalformed = "CACertHashMalformed"
	// ReasonCACertHashMismatch: the CA hash pins no CA of cluster-info.
	ReasonCACertHashMismatch = "CACertHashMismatch"
)

// CredentialsError is join credentials a node cannot join with. Its
// message names the SSM parameter and what to do; it never carries the
// token's secret.
type CredentialsError struct {
	// Parameter is the SSM parameter at fault.
	Parameter string
	// Reason is one of the Reason* constants.
	Reason  string
	Message string
}

func (e *CredentialsError) Error() string { return e.Message }

// AsCredentialsError returns the CredentialsError in err, or nil.
func AsCredentialsError(err error) *CredentialsError {
	e, _ := errors.AsType[*CredentialsError](err)
	return e
}

// Checker is a token source that can say, before anything is launched
// with them, whether the credentials it hands out can join a node.
type Checker interface {
	// Check returns nil when the credentials can join, a
	// *CredentialsError when they cannot, any other error when that
	// cannot be told now.
	Check(ctx context.Context) error
}

// Check reads the parameters (through the cache) and reviews them.
func (s *SSMTokenSource) Check(ctx context.Context) error {
	_, err := s.Credentials(ctx, "")
	return err
}

// Check: minted tokens are made for each node as it is launched.
func (m *MintedTokenSource) Check(context.Context) error { return nil }

var (
	_ Checker = &SSMTokenSource{}
	_ Checker = &MintedTokenSource{}
)

// renewHint is what to run when the token in SSM is bad.
func renewHint(parameter string) string {
	return fmt.Sprintf("create a token with `kubeadm token create --ttl 24h --print-join-command` and store it with "+
		"`aws ssm put-parameter --name %s --value <token> --type SecureString --overwrite`; launches resume once it is accepted", parameter)
}

// review asks the API server, with a TokenReview, whether the token
// authenticates as a bootstrap token (the way the joining node's kubelet
// will use it: no Secret is read), checks in kube-public/cluster-info that
// it can sign discovery (kubeadm join's token discovery needs the
// jws-kubeconfig-<id> signature) and that the CA hashes pin one of its CAs.
func review(ctx context.Context, client kubernetes.Interface, creds JoinCredentials, tokenParam, hashParam string) error {
	redacted, id := RedactToken(creds.Token), creds.TokenID()
	// The request and its answer carry the token: client-go logs bodies at
	// high verbosity, so this one call logs nothing.
	quiet := klog.NewContext(ctx, logr.Discard())
	tr, err := client.AuthenticationV1().TokenReviews().Create(quiet, &authnv1.TokenReview{Spec: authnv1.TokenReviewSpec{Token: creds.Token}}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("reviewing bootstrap token %s from SSM parameter %q with the API server: %w", redacted, tokenParam, err)
	}
	if !tr.Status.Authenticated {
		why := "not authenticated"
		if tr.Status.Error != "" {
			why += ": " + tr.Status.Error
		}
		return &CredentialsError{Parameter: tokenParam, Reason: ReasonTokenRejected, Message: fmt.Sprintf(
			"bootstrap token %s in SSM parameter %s is expired or unknown: the API server does not accept it (TokenReview: %s); %s",
			redacted, tokenParam, why, renewHint(tokenParam))}
	}
	user := tr.Status.User
	if user.Username != bootstrapapi.BootstrapUserPrefix+id || !slices.Contains(user.Groups, bootstrapapi.BootstrapDefaultGroup) {
		return &CredentialsError{Parameter: tokenParam, Reason: ReasonTokenNotForJoining, Message: fmt.Sprintf(
			"the token in SSM parameter %s authenticates as %s, not as a bootstrap token (%s<id> in %s): kubeadm join cannot use it; %s",
			tokenParam, user.Username, bootstrapapi.BootstrapUserPrefix, bootstrapapi.BootstrapDefaultGroup, renewHint(tokenParam))}
	}
	cm, err := client.CoreV1().ConfigMaps(metav1.NamespacePublic).Get(ctx, bootstrapapi.ConfigMapClusterInfo, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("reading %s/%s to check the join credentials: %w", metav1.NamespacePublic, bootstrapapi.ConfigMapClusterInfo, err)
	}
	if _, ok := cm.Data[bootstrapapi.JWSSignatureKeyPrefix+id]; !ok {
		return &CredentialsError{Parameter: tokenParam, Reason: ReasonTokenNotForJoining, Message: fmt.Sprintf(
			"bootstrap token %s in SSM parameter %s has not signed %s/%s (no %s%s): kubeadm join's discovery would fail; "+
				"the token needs the signing usage (kubeadm token create gives it) and kube-controller-manager's bootstrapsigner; %s",
			redacted, tokenParam, metav1.NamespacePublic, bootstrapapi.ConfigMapClusterInfo, bootstrapapi.JWSSignatureKeyPrefix, id, renewHint(tokenParam))}
	}
	if hashParam == "" {
		return nil // the hashes were read from cluster-info itself
	}
	ci, err := ParseClusterInfo(cm)
	if err != nil {
		return err
	}
	for _, h := range creds.CACertHashes {
		if slices.Contains(ci.CACertHashes, h) {
			return nil
		}
	}
	return &CredentialsError{Parameter: hashParam, Reason: ReasonCACertHashMismatch, Message: fmt.Sprintf(
		"the CA cert hash in SSM parameter %s (%s) pins no CA of %s/%s (%s): kubeadm join would refuse the API server; "+
			"store the hash `kubeadm token create --print-join-command` prints with `aws ssm put-parameter --name %s --value <hash> --type String --overwrite`",
		hashParam, strings.Join(creds.CACertHashes, ","), metav1.NamespacePublic, bootstrapapi.ConfigMapClusterInfo,
		strings.Join(ci.CACertHashes, ","), hashParam)}
}
