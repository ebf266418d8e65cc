// Package scheme registers the fleet-scheduler plugin args in kube-scheduler's
// configuration scheme. Import it for its side effect before the scheduler
// reads --config, and the Provisioner's pluginConfig args decode into
// *config.ProvisionerArgs with defaults applied.
package scheme

import (
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	schedv1 "k8s.io/kube-scheduler/config/v1"
	schedconfig "k8s.io/kubernetes/pkg/scheduler/apis/config"
	schedscheme "k8s.io/kubernetes/pkg/scheduler/apis/config/scheme"

	"github.com/fleet-scheduler/fleet-scheduler/plugins/apis/config"
	configv1 "github.com/fleet-scheduler/fleet-scheduler/plugins/apis/config/v1"
)

var (
	// Scheme is kube-scheduler's own scheme, which the scheduler decodes
	// --config with; our types are added to it rather than to a copy.
	Scheme = schedscheme.Scheme
	// Codecs are kube-scheduler's (strict) codecs over Scheme.
	Codecs = schedscheme.Codecs
)

func init() {
	// kube-scheduler defaults and converts plugin args with a second scheme
	// that it builds lazily from its own scheme builders
	// (pkg/scheduler/apis/config/v1.GetPluginArgConversionScheme), so our
	// types have to be in those builders too, not only in Scheme.
	schedconfig.SchemeBuilder.Register(config.AddToScheme)
	schedv1.SchemeBuilder.Register(configv1.AddToScheme)
	AddToScheme(Scheme)
}

// AddToScheme adds the internal and v1 plugin args types, with their
// defaults and conversions, to a scheme.
func AddToScheme(scheme *runtime.Scheme) {
	utilruntime.Must(config.AddToScheme(scheme))
	utilruntime.Must(configv1.AddToScheme(scheme))
}
