package world

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/fleet-scheduler/fleet-scheduler/hack/sandbox/controlplane"
	"github.com/fleet-scheduler/fleet-scheduler/hack/sandbox/pki"
	"github.com/fleet-scheduler/fleet-scheduler/hack/sandbox/seed"
)

// seedAWS makes the network, the node image, the node role and the
// interruption queue in moto in the background; the returned channel
// delivers the outcome.
func (w *World) seedAWS(ctx context.Context) <-chan error {
	awsDone := make(chan error, 1)
	go func() {
		var err error
		w.Network, err = seed.EC2Network(ctx, w.EC2, ClusterName, controlplane.KubernetesVersion)
		if err == nil {
			err = seed.NodeRole(ctx, iam.NewFromConfig(w.AWS), ClusterName)
		}
		if err == nil {
			w.InterruptionQueueURL, err = seed.InterruptionQueue(ctx, sqs.NewFromConfig(w.AWS), ClusterName)
		}
		awsDone <- err
	}()
	return awsDone
}

// seedCluster writes what kubeadm init leaves in the cluster, the
// scheduler's access and the CRDs, waits for the controller manager, and
// creates a bootstrap token that the bootstrap signer has signed.
func (w *World) seedCluster(ctx context.Context, b *boot) (err error) {
	if err := seed.Kubeadm(ctx, w.Client, seed.KubeadmCluster{
		ClusterName: ClusterName, Server: w.Server, CAData: w.PKI.CAData,
		KubernetesVersion: controlplane.KubernetesVersion, PodSubnet: controlplane.PodCIDR, ServiceSubnet: pki.ServiceClusterIPRange,
		NodeLeaseDurationSeconds: w.LeaseDurationSeconds,
	}); err != nil {
		return err
	}
	if b.applier, err = seed.NewApplier(w.Admin); err != nil {
		return err
	}
	// fleet-scheduler runs in place of kube-scheduler, as its user, with
	// the shipped RBAC: what the sandbox does, an installed one may do.
	if err := seed.SchedulerRBAC(ctx, b.applier, w.Root, "system:kube-scheduler", w.MintedTokens); err != nil {
		return err
	}
	crdFiles, err := seed.Glob(filepath.Join(w.Root, "manifests", "crds"))
	if err != nil {
		return err
	}
	crds, err := seed.ReadManifests(crdFiles...)
	if err != nil {
		return err
	}
	if err := b.applier.CRDs(ctx, crds); err != nil {
		return err
	}
	if err := controlplane.WaitHealthz(ctx, b.kcmPort, b.kcm, time.Minute); err != nil {
		return fmt.Errorf("%w (see %s)", err, filepath.Join(b.logs, "kube-controller-manager.log"))
	}
	w.progress("kube-controller-manager running (--controllers=%s); kubeadm objects and %d CRDs in place", controlplane.Controllers, len(crds))

	// kubeadm token create, signed by the bootstrap signer.
	if w.Token, err = seed.CreateToken(ctx, w.Client, 0); err != nil {
		return err
	}
	if err := seed.WaitForSignature(ctx, w.Client, w.Token.ID(), time.Minute); err != nil {
		return fmt.Errorf("the bootstrap signer did not sign cluster-info for token %s: %w", w.Token.ID(), err)
	}
	return nil
}

// seedJoinParameters waits for seedAWS and puts the token and the CA hash
// in SSM, where the runbook keeps them.
func (w *World) seedJoinParameters(ctx context.Context, awsDone <-chan error) error {
	if err := <-awsDone; err != nil {
		return err
	}
	token := w.Token
	if w.Fault == FaultExpiredToken {
		// The runbook's token of yesterday: expired, its Secret soon gone.
		expired, err := seed.CreateExpiredToken(ctx, w.Client)
		if err != nil {
			return err
		}
		token = expired
		w.progress("FAULT=%s: the token in SSM expired at %s", w.Fault, expired.Expires.Format(time.RFC3339))
	}
	if err := seed.PutJoinParameters(ctx, w.SSM, token.Token, w.CACertHash); err != nil {
		return err
	}
	w.progress("bootstrap token %s.<secret> (expires %s) and CA hash in SSM %s, %s",
		token.ID(), token.Expires.Format(time.RFC3339), seed.TokenParameter, seed.CACertHashParameter)
	w.progress("moto: %s, subnets %s, security group %s, AMI %s (%s)", w.Network.VPCID,
		strings.Join(mapValues(w.Network.Subnets), ","), w.Network.SecurityGroupID, w.Network.AMIID, w.Network.AMIName)
	w.progress("interruption queue %s", w.InterruptionQueueURL)
	return nil
}

// applyExamples applies the example EC2NodeClass and NodePool in the
// background; the returned channel delivers the outcome.
func (w *World) applyExamples(ctx context.Context, applier *seed.Applier) <-chan error {
	examplesDone := make(chan error, 1)
	go func() {
		objs, err := seed.ReadManifests(
			filepath.Join(w.Root, "manifests", "examples", "ec2nodeclass.yaml"),
			filepath.Join(w.Root, "manifests", "examples", "nodepool.yaml"))
		if err == nil {
			err = applier.Create(ctx, objs)
		}
		examplesDone <- err
	}()
	return examplesDone
}

// EnvFile is .sandbox/env: the exports a second shell needs.
func (w *World) EnvFile() string {
	env := fmt.Sprintf("export KUBECONFIG=%s AWS_ENDPOINT_URL=%s AWS_REGION=%s AWS_DEFAULT_REGION=%s AWS_ACCESS_KEY_ID=%s AWS_SECRET_ACCESS_KEY=%s INTERRUPTION_QUEUE_URL=%s\n",
		w.Kubeconfig, w.MotoEndpoint, Region, Region, AccessKeyID, SecretAccessKey, w.InterruptionQueueURL)
	if w.Monitoring != nil {
		env += fmt.Sprintf("export PROMETHEUS_URL=%s\n", w.Monitoring.URL)
	}
	if w.Kubeadm {
		env += fmt.Sprintf("export PATH=%s:$PATH\n", filepath.Join(w.Dir, "bin"))
	}
	return env
}

// writeKubeadm writes Dir/bin/kubeadm: the runbook's `kubeadm token ...`
// run on a control-plane node reads /etc/kubernetes/admin.conf, which
// here is the sandbox's admin kubeconfig. A script, not a flag default,
// because kubeadm only takes --kubeconfig after `token`.
func (w *World) writeKubeadm(bin string) error {
	dir := filepath.Join(w.Dir, "bin")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	script := fmt.Sprintf(`#!/bin/sh
# The sandbox's kubeadm (%[1]s, built like its control plane); its
# token commands act on the sandbox's cluster.
if [ "$1" = token ]; then exec %[1]s "$@" --kubeconfig %[2]s; fi
exec %[1]s "$@"
`, bin, filepath.Join(w.Dir, "kubeconfig"))
	return os.WriteFile(filepath.Join(dir, "kubeadm"), []byte(script), 0o755)
}
