// Package metrics defines fleet-scheduler's metrics under Karpenter v1's
// names, registered in the component-base legacy registry that the
// scheduler's /metrics endpoint serves.
package metrics

import (
	"sync"

	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
)

const namespace = "karpenter"

var (
	// NodeClaimsCreated counts NodeClaims written when a batch closes.
	NodeClaimsCreated = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace: namespace, Subsystem: "nodeclaims", Name: "created_total",
		Help: "Number of NodeClaims created, by reason and nodepool.",
	}, []string{"reason", "nodepool"})
	// NodeClaimsLaunched counts NodeClaims whose machine was launched.
	NodeClaimsLaunched = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace: namespace, Subsystem: "nodeclaims", Name: "launched_total",
		Help: "Number of NodeClaims launched, by nodepool.",
	}, []string{"nodepool"})
	// NodeClaimsRegistered counts NodeClaims whose Node registered.
	NodeClaimsRegistered = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace: namespace, Subsystem: "nodeclaims", Name: "registered_total",
		Help: "Number of NodeClaims registered, by nodepool.",
	}, []string{"nodepool"})
	// NodeClaimsInitialized counts NodeClaims whose Node became ready for pods.
	NodeClaimsInitialized = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace: namespace, Subsystem: "nodeclaims", Name: "initialized_total",
		Help: "Number of NodeClaims initialized, by nodepool.",
	}, []string{"nodepool"})
	// NodeClaimsTerminated counts NodeClaims whose machine was terminated.
	NodeClaimsTerminated = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace: namespace, Subsystem: "nodeclaims", Name: "terminated_total",
		Help: "Number of NodeClaims terminated, by nodepool.",
	}, []string{"nodepool"})
	// NodeClaimsDisrupted counts NodeClaims given up or removed, by reason.
	NodeClaimsDisrupted = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace: namespace, Subsystem: "nodeclaims", Name: "disrupted_total",
		Help: "Number of NodeClaims disrupted, by reason and nodepool.",
	}, []string{"reason", "nodepool"})
	// ProvisionerSchedulingDuration is how long one Provisioner decision takes.
	ProvisionerSchedulingDuration = metrics.NewHistogram(&metrics.HistogramOpts{
		Namespace: namespace, Subsystem: "provisioner", Name: "scheduling_duration_seconds",
		Help:    "Duration of one Provisioner PostFilter decision, in seconds.",
		Buckets: metrics.ExponentialBuckets(0.0001, 2, 16),
	})
	// SchedulerSchedulingDuration is the same decision under the name Karpenter v1 uses.
	SchedulerSchedulingDuration = metrics.NewHistogramVec(&metrics.HistogramOpts{
		Namespace: namespace, Subsystem: "scheduler", Name: "scheduling_duration_seconds",
		Help:    "Duration of scheduling simulations for provisioning, in seconds.",
		Buckets: metrics.ExponentialBuckets(0.0001, 2, 16),
	}, []string{"controller"})
	// PodsStartupDuration is the time from a pod's creation to it running, for provisioned pods.
	PodsStartupDuration = metrics.NewHistogram(&metrics.HistogramOpts{
		Namespace: namespace, Subsystem: "pods", Name: "startup_duration_seconds",
		Help:    "Time from pod creation until the pod is running, for pods that were provisioned capacity.",
		Buckets: metrics.ExponentialBuckets(1, 1.5, 16),
	})
	// NodesAllocatable is each managed node's allocatable, by resource.
	NodesAllocatable = metrics.NewGaugeVec(&metrics.GaugeOpts{
		Namespace: namespace, Subsystem: "nodes", Name: "allocatable",
		Help: "Node allocatable, by node, nodepool, instance type, capacity type, zone and resource type.",
	}, []string{"node_name", "nodepool", "instance_type", "capacity_type", "zone", "resource_type"})
)

var registerOnce sync.Once

// Register adds every metric to the legacy registry once.
func Register() {
	registerOnce.Do(func() {
		for _, m := range []metrics.Registerable{
			NodeClaimsCreated, NodeClaimsLaunched, NodeClaimsRegistered, NodeClaimsInitialized,
			NodeClaimsTerminated, NodeClaimsDisrupted, ProvisionerSchedulingDuration,
			SchedulerSchedulingDuration, PodsStartupDuration, NodesAllocatable,
		} {
			legacyregistry.MustRegister(m)
		}
	})
}
