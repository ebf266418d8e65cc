// Package manifests tests the deployment manifests: the kustomize base and
// overlays under manifests/ (decoded strictly, the scheduler configuration
// loaded the way kube-scheduler loads --config, RBAC without wildcards,
// accepted by a real kube-apiserver and sufficient for the real binary run
// as the ServiceAccount), the IAM policy (the actions the code calls, no
// more) and the Grafana dashboard (metric names that exist).
package manifests
