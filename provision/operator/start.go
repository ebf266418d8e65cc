package operator

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/google/uuid"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/klog/v2"

	ec2v1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/ec2/v1"
	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/controller"
	"github.com/fleet-scheduler/fleet-scheduler/provision/disruption"
	"github.com/fleet-scheduler/fleet-scheduler/provision/drain"
	nodetermination "github.com/fleet-scheduler/fleet-scheduler/provision/node/termination"
	"github.com/fleet-scheduler/fleet-scheduler/provision/nodeclaim/garbagecollection"
	"github.com/fleet-scheduler/fleet-scheduler/provision/nodeclaim/lifecycle"
	"github.com/fleet-scheduler/fleet-scheduler/provision/nodeclaim/termination"
	"github.com/fleet-scheduler/fleet-scheduler/provision/nodeclass"
	"github.com/fleet-scheduler/fleet-scheduler/provision/nodepool/static"
	"github.com/fleet-scheduler/fleet-scheduler/provision/nodepool/status"
)

// Start runs the informers and the catalogue refresh at once (the plugin
// needs them on every replica) and the controllers once this process holds
// the controllers' Lease. It returns when the caches have synced.
func (o *Operator) Start(ctx context.Context) error {
	if err := o.checkCRDs(); err != nil {
		return err
	}
	o.broadcaster.StartRecordingToSink(ctx.Done())
	controllers, err := o.controllers(ctx)
	if err != nil {
		return err
	}
	o.Informers.Start(ctx.Done())
	o.KubeInformers.Start(ctx.Done())
	go o.catalog.Run(ctx)
	syncCtx, cancel := context.WithTimeout(ctx, cacheSyncTimeout)
	defer cancel()
	for t, ok := range o.Informers.WaitForCacheSync(syncCtx.Done()) {
		if !ok {
			return fmt.Errorf("informer for %v did not sync", t)
		}
	}
	for t, ok := range o.KubeInformers.WaitForCacheSync(syncCtx.Done()) {
		if !ok {
			return fmt.Errorf("informer for %v did not sync", t)
		}
	}
	run := func(ctx context.Context) {
		for _, c := range controllers {
			go c.Run(ctx, 2)
		}
	}
	if o.opts.LeaseName == "" {
		go run(ctx)
		return nil
	}
	return o.leaderElect(ctx, run)
}

// cacheSyncTimeout bounds the wait for the informers at start.
const cacheSyncTimeout = 2 * time.Minute

// checkCRDs fails fast, with the fix in the message, when the Karpenter
// APIs are not served: the informers would otherwise wait forever.
func (o *Operator) checkCRDs() error {
	for _, gv := range []string{karpv1.SchemeGroupVersion.String(), ec2v1.SchemeGroupVersion.String()} {
		if _, err := o.Kube.Discovery().ServerResourcesForGroupVersion(gv); err != nil {
			return fmt.Errorf("the API %s is not served (%v): install the CRDs with kubectl apply -f manifests/crds", gv, err)
		}
	}
	return nil
}

func (o *Operator) controllers(ctx context.Context) ([]*controller.Controller, error) {
	karp := o.Informers.Karpenter().V1()
	claims := karp.NodeClaims().Informer()
	nodes := o.KubeInformers.Core().V1().Nodes()
	classes := o.Informers.EC2().V1().EC2NodeClasses()
	_ = karp.NodePools().Informer()
	_ = o.KubeInformers.Apps().V1().DaemonSets().Informer()

	lc := controller.New(lifecycle.Name, &lifecycle.Controller{
		Karpenter: o.Karpenter, Kube: o.Kube, NodeClaims: karp.NodeClaims().Lister(), Nodes: nodes.Lister(),
		Cloud: o.Cloud, Recorder: o.Recorder, RegistrationTTL: o.opts.RegistrationTTL,
	})
	if err := lifecycle.Register(lc, claims, nodes.Informer()); err != nil {
		return nil, err
	}
	pods := o.KubeInformers.Core().V1().Pods().Informer()
	if err := drain.AddPodIndexers(pods); err != nil {
		return nil, err
	}
	if err := observePodStartup(pods, karp.NodeClaims().Lister()); err != nil {
		return nil, err
	}
	drainer := &drain.Drainer{Kube: o.Kube, Pods: pods.GetIndexer(), Recorder: o.Recorder}
	tc := controller.New(termination.Name, &termination.Controller{
		Karpenter: o.Karpenter, Kube: o.Kube, NodeClaims: karp.NodeClaims().Lister(), Cloud: o.Cloud, Recorder: o.Recorder,
		Drainer: drainer,
	})
	if err := tc.Watch(claims); err != nil {
		return nil, err
	}
	// A managed Node deleted by hand goes through its claim's termination.
	ntc := controller.New(nodetermination.Name, &nodetermination.Controller{
		Karpenter: o.Karpenter, Kube: o.Kube, Nodes: nodes.Lister(), NodeClaims: karp.NodeClaims().Lister(), Recorder: o.Recorder,
	})
	if err := ntc.Watch(nodes.Informer()); err != nil {
		return nil, err
	}
	nc := controller.New(nodeclass.Name, &nodeclass.Controller{
		Karpenter: o.Karpenter, NodeClasses: classes.Lister(), Resolver: o.Resolver, Recorder: o.Recorder, Profiles: o.Profiles,
		NodeClaims: karp.NodeClaims().Lister(),
	})
	if err := nc.Watch(classes.Informer()); err != nil {
		return nil, err
	}
	ps := controller.New(status.Name, &status.Controller{Karpenter: o.Karpenter, NodePools: karp.NodePools().Lister(),
		NodeClaims: karp.NodeClaims().Lister(), NodeClasses: classes.Lister(), Recorder: o.Recorder})
	if err := status.Register(ps, karp.NodePools().Informer(), claims, classes.Informer()); err != nil {
		return nil, err
	}
	d, err := disruption.New(ctx, disruption.Options{Karpenter: o.Karpenter, Kube: o.Kube,
		KarpenterInformers: o.Informers, KubeInformers: o.KubeInformers, Recorder: o.Recorder,
		Pools: o.Source, Machines: o.Cloud, Interval: o.opts.DisruptionInterval})
	if err != nil {
		return nil, err
	}
	dc := controller.New(disruption.Name, d)
	pe := controller.New(disruption.PodEventsName, d.PodEvents())
	if err := d.Register(dc, pe); err != nil {
		return nil, err
	}
	gc := &garbagecollection.Controller{Karpenter: o.Karpenter, NodeClaims: karp.NodeClaims().Lister(), Cloud: o.Cloud, Recorder: o.Recorder}
	gcc := controller.New(garbagecollection.Name, gc)
	gc.Register(gcc)
	sc := controller.New(static.Name, &static.Controller{Karpenter: o.Karpenter, NodePools: karp.NodePools().Lister(),
		NodeClaims: karp.NodeClaims().Lister(), Pools: o.Source, Recorder: o.Recorder})
	if err := static.Register(sc, karp.NodePools().Informer(), claims); err != nil {
		return nil, err
	}
	return []*controller.Controller{lc, tc, ntc, nc, ps, dc, pe, gcc, sc}, nil
}

// leaderElect runs the controllers while this process holds the Lease. On
// losing it the process exits, as kube-scheduler does, so a stale leader
// never acts.
func (o *Operator) leaderElect(ctx context.Context, run func(context.Context)) error {
	id := o.opts.Identity
	if id == "" {
		host, _ := os.Hostname()
		id = host + "_" + uuid.NewString()
	}
	lock, err := resourcelock.New(resourcelock.LeasesResourceLock, o.opts.LeaseNamespace, o.opts.LeaseName,
		o.Kube.CoreV1(), o.Kube.CoordinationV1(), resourcelock.ResourceLockConfig{Identity: id})
	if err != nil {
		return err
	}
	elector, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock: lock, ReleaseOnCancel: true, Name: o.opts.LeaseName,
		LeaseDuration: 15 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: 2 * time.Second,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: run,
			OnStoppedLeading: func() {
				if ctx.Err() == nil {
					klog.FromContext(ctx).Error(nil, "Lost the provisioning controllers' lease; exiting")
					klog.FlushAndExit(klog.ExitFlushTimeout, 1)
				}
			},
		},
	})
	if err != nil {
		return err
	}
	go elector.Run(ctx)
	return nil
}
