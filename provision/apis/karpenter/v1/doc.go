// Package v1 is the karpenter.sh/v1 API as fleet-scheduler serves it:
// NodePool and NodeClaim with the field names, JSON tags and meanings of
// Karpenter v1, so manifests written for Karpenter apply unchanged.
//
// The CRDs in manifests/crds, the deep-copy functions and the typed client
// under provision/client are generated from these types by
// hack/codegen-apis.sh (make generate).
//
// Validation follows what Karpenter's CRDs enforce at admission, as
// kubebuilder markers and CEL rules on the types, plus a few schema patches
// applied by gen_crd_patches.go where markers cannot reach (fields of
// corev1.Taint, values of maps). Differences from Karpenter's CRDs:
//   - The AWS provider's restriction of the karpenter.k8s.aws label domain
//     (only its well-known labels) is part of these CRDs, as in the CRDs the
//     AWS provider ships.
//   - The rule that a NodePool may not require karpenter.sh/nodepool sits on
//     the requirements list (the key type is shared with NodeClaim, where the
//     key is allowed), so its error names spec.template.spec.requirements
//     rather than the entry's key.
//   - Requirement values are checked as label values item by item (Karpenter
//     sets maxLength and pattern on the list, where they have no effect).
//   - The requirement rules test has(x.values) before reading values, so a
//     requirement without values gets the rule's message instead of a CEL
//     "no such key" error; what they accept is unchanged.
//   - Conditions are metav1.Condition; NodePool and NodeClaim keep Karpenter's
//     schema for them (NodeClaim's reason and message may be empty).
//
// What Karpenter checks only at run time (label keys and values of the
// template being qualified names, duplicate taints, capacity-type values) is
// not an admission rule there either, and is left to the controllers, which
// report it in the ValidationSucceeded condition.
//
// +k8s:deepcopy-gen=package
// +groupName=karpenter.sh
// +groupGoName=Karpenter
package v1
