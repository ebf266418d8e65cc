// Package crds tests the generated Karpenter-compatible CRDs in
// manifests/crds against a real kube-apiserver: that Karpenter v1 manifests
// apply unchanged and read back whole, that invalid ones are refused the way
// Karpenter refuses them, and that the generated typed client and informers
// work.
package crds
