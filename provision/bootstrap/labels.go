package bootstrap

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
	kubeletapis "k8s.io/kubelet/pkg/apis"
)

// KubeletSettableLabels splits node labels into those the kubelet may set on
// its own Node (through --node-labels) and those only a controller may set.
//
// The rules are the NodeRestriction admission plugin's, which the kubelet's
// own flag validation repeats (it refuses to start otherwise): a label in the
// kubernetes.io or k8s.io namespaces (or a subdomain of them) is the kubelet's
// only if it is in the well-known kubelet list (hostname, arch, os,
// instance-type, topology zone/region and their beta forms) or under
// kubelet.kubernetes.io/ or node.kubernetes.io/ (or a subdomain); and
// node-restriction.kubernetes.io/ is never the kubelet's. Everything outside
// those namespaces is settable.
func KubeletSettableLabels(all map[string]string) (settable, controllerOnly map[string]string) {
	settable, controllerOnly = map[string]string{}, map[string]string{}
	for k, v := range all {
		if IsKubeletSettableLabel(k) {
			settable[k] = v
		} else {
			controllerOnly[k] = v
		}
	}
	return settable, controllerOnly
}

// IsKubeletSettableLabel reports whether the kubelet may set the label key on
// its own Node under NodeRestriction.
func IsKubeletSettableLabel(key string) bool {
	ns := labelNamespace(key)
	if ns == corev1.LabelNamespaceNodeRestriction || strings.HasSuffix(ns, "."+corev1.LabelNamespaceNodeRestriction) {
		return false
	}
	if isKubernetesNamespace(ns) {
		return kubeletapis.IsKubeletLabel(key)
	}
	return true
}

func isKubernetesNamespace(ns string) bool {
	return ns == "kubernetes.io" || strings.HasSuffix(ns, ".kubernetes.io") ||
		ns == "k8s.io" || strings.HasSuffix(ns, ".k8s.io")
}

func labelNamespace(key string) string {
	if ns, _, ok := strings.Cut(key, "/"); ok {
		return ns
	}
	return ""
}
