package provisioner

import (
	"fmt"

	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/informers"
	corelisters "k8s.io/client-go/listers/core/v1"
	storagelisters "k8s.io/client-go/listers/storage/v1"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
)

// volumeListers read what a pod's volumes tie it to.
type volumeListers struct {
	claims  corelisters.PersistentVolumeClaimLister
	volumes corelisters.PersistentVolumeLister
	classes storagelisters.StorageClassLister
}

// newVolumeListers registers the informers before the scheduler starts them.
func newVolumeListers(f informers.SharedInformerFactory) *volumeListers {
	return &volumeListers{
		claims:  f.Core().V1().PersistentVolumeClaims().Lister(),
		volumes: f.Core().V1().PersistentVolumes().Lister(),
		classes: f.Storage().V1().StorageClasses().Lister(),
	}
}

// readVolumes turns the pod's persistent volumes into node selectors its
// claim's options must meet: a bound volume's node affinity, and for a
// claim not bound yet whose class waits for the first consumer, the
// class's allowed topologies. It says why no node can be provisioned for
// the pod when a claim is missing, or unbound with a class that binds
// immediately (its volume is made before any node is chosen, wherever the
// provisioner puts it; the pod waits for that).
func (d *decision) readVolumes() string {
	vl := d.p.volumes
	d.volumes = d.volumes[:0]
	for _, vol := range d.pod.Spec.Volumes {
		var name string
		switch {
		case vol.PersistentVolumeClaim != nil:
			name = vol.PersistentVolumeClaim.ClaimName
		case vol.Ephemeral != nil:
			name = d.pod.Name + "-" + vol.Name
		default:
			continue
		}
		if vl == nil {
			continue
		}
		pvc, err := vl.claims.PersistentVolumeClaims(d.pod.Namespace).Get(name)
		if apierrors.IsNotFound(err) && vol.Ephemeral != nil && vol.Ephemeral.VolumeClaimTemplate != nil {
			// The ephemeral volume controller has not made the claim yet:
			// it will be made from the template, with the template's class.
			if why := d.classTopology(name, vol.Ephemeral.VolumeClaimTemplate.Spec.StorageClassName); why != "" {
				return why
			}
			continue
		}
		if err != nil {
			return fmt.Sprintf("its persistentvolumeclaim %q cannot be read: %v", name, err)
		}
		if pvc.Spec.VolumeName != "" {
			pv, err := vl.volumes.Get(pvc.Spec.VolumeName)
			if err != nil {
				return fmt.Sprintf("persistentvolume %q of its claim %q cannot be read: %v", pvc.Spec.VolumeName, name, err)
			}
			if pv.Spec.NodeAffinity != nil && pv.Spec.NodeAffinity.Required != nil {
				sel, err := nodeaffinity.NewNodeSelector(pv.Spec.NodeAffinity.Required)
				if err != nil {
					return fmt.Sprintf("persistentvolume %q has an invalid node affinity: %v", pv.Name, err)
				}
				d.volumes = append(d.volumes, sel)
			}
			continue
		}
		if why := d.classTopology(name, pvc.Spec.StorageClassName); why != "" {
			return why
		}
	}
	return ""
}

// classTopology adds the allowed topologies of an unbound claim's class,
// or says why the claim keeps the pod from being provisioned for.
func (d *decision) classTopology(claim string, className *string) string {
	if className == nil || *className == "" {
		return fmt.Sprintf("its persistentvolumeclaim %q is not bound and has no StorageClass: it waits for a PersistentVolume to be bound to it, not for a node", claim)
	}
	class, err := d.p.volumes.classes.Get(*className)
	if err != nil {
		return fmt.Sprintf("StorageClass %q of its persistentvolumeclaim %q cannot be read: %v", *className, claim, err)
	}
	if class.VolumeBindingMode == nil || *class.VolumeBindingMode != storagev1.VolumeBindingWaitForFirstConsumer {
		return fmt.Sprintf("its persistentvolumeclaim %q is not bound and StorageClass %q binds immediately: the volume is made before a node is chosen, so no node is provisioned until it is bound", claim, *className)
	}
	if len(class.AllowedTopologies) == 0 {
		return ""
	}
	terms := make([]v1.NodeSelectorTerm, 0, len(class.AllowedTopologies))
	for _, t := range class.AllowedTopologies {
		var term v1.NodeSelectorTerm
		for _, e := range t.MatchLabelExpressions {
			term.MatchExpressions = append(term.MatchExpressions, v1.NodeSelectorRequirement{Key: e.Key, Operator: v1.NodeSelectorOpIn, Values: e.Values})
		}
		terms = append(terms, term)
	}
	sel, err := nodeaffinity.NewNodeSelector(&v1.NodeSelector{NodeSelectorTerms: terms})
	if err != nil {
		return fmt.Sprintf("StorageClass %q has invalid allowedTopologies: %v", *className, err)
	}
	d.volumes = append(d.volumes, sel)
	return ""
}
