// +k8s:deepcopy-gen=package
// +k8s:conversion-gen=github.com/fleet-scheduler/fleet-scheduler/plugins/apis/config
// +k8s:defaulter-gen=TypeMeta
// +k8s:defaulter-gen-input=github.com/fleet-scheduler/fleet-scheduler/plugins/apis/config/v1
// +groupName=kubescheduler.config.k8s.io

// Package v1 is the versioned form of the fleet-scheduler plugin args that
// users write in a KubeSchedulerConfiguration (kubescheduler.config.k8s.io/v1).
package v1
