// Package nodesim simulates the sandbox's nodes: EC2 instances in moto that
// boot from their user data alone and join the cluster the way a kubeadm
// node does, and the kubelet each of them then runs.
//
// # A machine
//
// The Simulator polls moto for running instances tagged
// kubernetes.io/cluster/<cluster>. For each one it waits a boot delay, then
// does what the instance's user data says, knowing only what the machine
// itself would know (its user data, and what IMDS and the hardware tell it:
// instance id, type, zone, private address, CPUs, memory, root disk):
//
//  1. join.ParseJoin (hack/sandbox/join) finds the `kubeadm join` and KUBELET_EXTRA_ARGS in
//     the user data: the join's flags, or the kubeadm JoinConfiguration a heredoc of the user
//     data writes for `kubeadm join --config`.
//  2. kubeadm's own token discovery (join.Discover, which runs
//     k8s.io/kubernetes/cmd/kubeadm/app/discovery) fetches
//     kube-public/cluster-info anonymously, checks the bootstrap signer's JWS
//     for the token and pins the CA against --discovery-token-ca-cert-hash.
//  3. Like `kubeadm join`, it reads kube-system/kubeadm-config and
//     kube-system/kubelet-config with the bootstrap token.
//  4. The kubelet's own TLS bootstrap
//     (k8s.io/kubernetes/pkg/kubelet/certificate/bootstrap.LoadClientCert,
//     which uses client-go's csr.RequestCertificate/WaitForCertificate) sends
//     a CSR for system:node:<name> with signer
//     kubernetes.io/kube-apiserver-client-kubelet; the controller manager's
//     csrapproving controller approves it because the kubeadm RBAC lets the
//     token's group auto-approve, and csrsigning signs it with the cluster CA.
//  5. With the certificate it earned, the Kubelet registers the Node (so
//     NodeRestriction judges its labels), keeps it Ready and runs its pods.
//
// A wrong token or CA hash fails step 2 and the node never joins; the
// reason is logged and kept in the machine's status. When moto reports the
// instance is no longer running, its kubelet stops: no more lease renewals
// or status updates, so node lifecycle marks the Node NotReady.
//
// # A kubelet
//
// Kubelet registers the Node (labels from --node-labels plus the kubelet's
// own kubernetes.io/hostname, os and arch; taints from
// --register-with-taints; capacity from the hardware: vCPUs, memory less
// what the kernel keeps, the root volume, 110 pods; allocatable less
// kubelet-config's reservations and hard eviction thresholds), renews its
// Lease in kube-node-lease, reports status when it changes (or every five
// minutes, as kubelet's nodeStatusReportFrequency), and runs the pods bound
// to it: admission against allocatable (a pod that does not fit fails with
// OutOfcpu/OutOfmemory/OutOfpods as on a real kubelet), then Running and
// Ready with an IP from the Node's pod CIDR; when a pod's deletionTimestamp
// is set it stops the containers, reports the terminal phase and deletes
// the pod with grace period 0, as the kubelet's status manager does.
//
// # Why not kubemark
//
// kubemark's hollow node runs the real kubelet code on a fake container
// runtime, which is the more faithful kubelet. It was weighed and not
// chosen:
//   - It does not join: a hollow node is handed a kubeconfig. The part the
//     sandbox exists to test - user data -> kubeadm token discovery with the
//     CA pin -> TLS bootstrap -> a node name NodeRestriction accepts - would
//     still have to be written around it, and that is most of this package.
//   - Cost: each hollow node is a full kubelet (and, usually, kube-proxy)
//     with its own informers, managers and goroutines - tens of MiB each, as
//     a process per node - where a Kubelet here is one pod informer and two
//     timers in the sandbox process. The seed's scenario runs ~5 nodes and
//     the scale tests more; the sandbox must stay small beside the other
//     engineers' builds.
//   - Build: pkg/kubemark pulls in the kubelet, cadvisor, CRI and volume
//     plugins, modules this repository does not carry checksums for.
//   - What the scheduler and the provisioning controllers observe of a node
//     is its Node object, its Lease and its pods' status; those are produced
//     here the way the kubelet produces them (same conditions, same
//     admission failure reasons, same terminal-phase-then-delete sequence).
//     Container-level behaviour (probes, restarts, images, mounts) is not
//     needed for node autoscaling and is not simulated; what the volume
//     manager waits for before a pod starts (its PVCs bound, its Secrets
//     and ConfigMaps there) is, in volumes.go.
package nodesim
