package env

import (
	"context"
	"testing"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/events"
	configv1 "k8s.io/kube-scheduler/config/v1"
	"k8s.io/kubernetes/pkg/scheduler"
	configtesting "k8s.io/kubernetes/pkg/scheduler/apis/config/testing"
	frameworkruntime "k8s.io/kubernetes/pkg/scheduler/framework/runtime"
	"k8s.io/kubernetes/pkg/scheduler/profile"
	"k8s.io/utils/ptr"
)

// SchedulerName is the profile the test scheduler serves.
const SchedulerName = "fleet-scheduler"

// StartScheduler runs the real kube-scheduler in this process against cfg,
// with one profile: the default plugins plus the named plugin (built by
// factory) at Filter, and at PostFilter after DefaultPreemption and before
// DynamicResources. It stops when the test ends.
func StartScheduler(t *testing.T, cfg *rest.Config, pluginName string, factory frameworkruntime.PluginFactory) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	client := kubernetes.NewForConfigOrDie(cfg)

	versioned := configv1.KubeSchedulerConfiguration{Profiles: []configv1.KubeSchedulerProfile{{
		SchedulerName: ptr.To(SchedulerName),
		// After DefaultPreemption, before DynamicResources, as the shipped
		// configurations order them (see the README).
		Plugins: &configv1.Plugins{
			Filter: configv1.PluginSet{Enabled: []configv1.Plugin{{Name: pluginName}}},
			PostFilter: configv1.PluginSet{
				Disabled: []configv1.Plugin{{Name: "DynamicResources"}},
				Enabled:  []configv1.Plugin{{Name: pluginName}, {Name: "DynamicResources"}},
			},
		},
	}}}
	internal := configtesting.V1ToInternalWithDefaults(t, versioned)

	informerFactory := scheduler.NewInformerFactory(client, 0, nil)
	broadcaster := events.NewBroadcaster(&events.EventSinkImpl{Interface: client.EventsV1()})
	broadcaster.StartRecordingToSink(ctx.Done())
	t.Cleanup(broadcaster.Shutdown)
	sched, err := scheduler.New(ctx, client, informerFactory, nil, profile.NewRecorderFactory(broadcaster),
		scheduler.WithProfiles(internal.Profiles...),
		scheduler.WithKubeConfig(cfg),
		scheduler.WithFrameworkOutOfTreeRegistry(frameworkruntime.Registry{pluginName: factory}),
		scheduler.WithPodInitialBackoffSeconds(1),
		scheduler.WithPodMaxBackoffSeconds(1),
	)
	if err != nil {
		t.Fatalf("creating scheduler: %v", err)
	}
	informerFactory.Start(ctx.Done())
	informerFactory.WaitForCacheSync(ctx.Done())
	go sched.Run(ctx)
}
