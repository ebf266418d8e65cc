// Package bootstrap holds everything a new EC2 instance needs to join a
// kubeadm cluster: the API server endpoint and CA discovered from
// kube-public/cluster-info, bootstrap token credentials (read from SSM
// Parameter Store as in the user runbook, or minted per node as kubeadm-style
// bootstrap token Secrets), and the user data script that runs the
// EC2NodeClass user data and then `kubeadm join`.
//
// Secrets stay secret: the token's secret half appears only in the rendered
// user data. JoinCredentials formats itself redacted for fmt and logr, and
// no error or log line in this package carries it.
package bootstrap
