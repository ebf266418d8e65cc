// +k8s:deepcopy-gen=package

// Package config holds the internal (unversioned) form of the fleet-scheduler
// plugin args. Plugins only ever see these types; users write the v1 form.
package config
