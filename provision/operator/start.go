package operator

import (
	"context"
	"fmt"
	"time"

	"k8s.io/klog/v2"

	ec2v1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/ec2/v1"
	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
	karpv1alpha1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1alpha1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/bootstrap"
	"github.com/fleet-scheduler/fleet-scheduler/provision/controller"
	"github.com/fleet-scheduler/fleet-scheduler/provision/disruption"
	"github.com/fleet-scheduler/fleet-scheduler/provision/drain"
	"github.com/fleet-scheduler/fleet-scheduler/provision/interruption"
	nodetermination "github.com/fleet-scheduler/fleet-scheduler/provision/node/termination"
	"github.com/fleet-scheduler/fleet-scheduler/provision/nodeclaim/garbagecollection"
	"github.com/fleet-scheduler/fleet-scheduler/provision/nodeclaim/lifecycle"
	"github.com/fleet-scheduler/fleet-scheduler/provision/nodeclaim/podevents"
	"github.com/fleet-scheduler/fleet-scheduler/provision/nodeclaim/termination"
	"github.com/fleet-scheduler/fleet-scheduler/provision/nodeclass"
	overlaystatus "github.com/fleet-scheduler/fleet-scheduler/provision/nodeoverlay/status"
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
	o.enableOverlays(ctx)
	o.broadcaster.StartRecordingToSink(ctx.Done())
	controllers, err := o.controllers(ctx)
	if err != nil {
		return err
	}
	for _, c := range controllers {
		c.SetRecorder(o.Recorder) // a panic on one object is an event on it
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
			go c.Run(ctx, c.Workers())
		}
	}
	if !o.elected() {
		go run(ctx)
		return nil
	}
	return o.leaderElect(ctx, run)
}

// LifecycleWorkers launch, register and initialize claims at once.
const LifecycleWorkers = 16

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

// enableOverlays reads NodeOverlays when karpenter.sh/v1alpha1 serves
// them. The API is optional (Karpenter has it behind a feature gate;
// here installing its CRD turns it on): without it, no overlay applies,
// which a log line says once.
func (o *Operator) enableOverlays(ctx context.Context) {
	list, err := o.Kube.Discovery().ServerResourcesForGroupVersion(karpv1alpha1.SchemeGroupVersion.String())
	if err == nil {
		for _, r := range list.APIResources {
			if r.Name == karpv1alpha1.NodeOverlayResource {
				o.Source.NodeOverlays = o.Informers.Karpenter().V1alpha1().NodeOverlays().Lister()
				return
			}
		}
	}
	klog.FromContext(ctx).Info("NodeOverlays are not applied: the API is not served; install its CRD (kubectl apply -f manifests/crds) and restart to use them",
		"api", karpv1alpha1.SchemeGroupVersion.WithResource(karpv1alpha1.NodeOverlayResource).String())
}

func (o *Operator) controllers(ctx context.Context) ([]*controller.Controller, error) {
	karp := o.Informers.Karpenter().V1()
	claims := karp.NodeClaims().Informer()
	nodes := o.KubeInformers.Core().V1().Nodes()
	classes := o.Informers.EC2().V1().EC2NodeClasses()
	if err := initPoolMetrics(karp.NodePools().Informer()); err != nil {
		return nil, err
	}
	_ = o.KubeInformers.Apps().V1().DaemonSets().Informer()
	if err := o.Source.Watch(claims); err != nil {
		return nil, err
	}

	pods := o.KubeInformers.Core().V1().Pods().Informer()
	if err := lifecycle.IndexPods(pods); err != nil {
		return nil, err
	}
	// Launches wait seconds on EC2: a burst of claims (a Deployment scaled
	// by hundreds) must not queue behind two of them.
	lc := controller.New(lifecycle.Name, &lifecycle.Controller{
		Karpenter: o.Karpenter, Kube: o.Kube, NodeClaims: karp.NodeClaims().Lister(), Nodes: nodes.Lister(),
		Cloud: o.Cloud, Recorder: o.Recorder, RegistrationTTL: o.opts.RegistrationTTL,
		Pods: pods.GetIndexer(), Health: o.Health,
	}).WithWorkers(LifecycleWorkers)
	if err := lifecycle.Register(lc, claims, nodes.Informer()); err != nil {
		return nil, err
	}
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
	if err := termination.Register(tc, claims); err != nil {
		return nil, err
	}
	// A managed Node deleted by hand goes through its claim's termination.
	ntc := controller.New(nodetermination.Name, &nodetermination.Controller{
		Karpenter: o.Karpenter, Kube: o.Kube, Nodes: nodes.Lister(), NodeClaims: karp.NodeClaims().Lister(), Recorder: o.Recorder,
	})
	if err := nodetermination.Register(ntc, nodes.Informer()); err != nil {
		return nil, err
	}
	nc := controller.New(nodeclass.Name, &nodeclass.Controller{
		Karpenter: o.Karpenter, NodeClasses: classes.Lister(), Resolver: o.Resolver, Recorder: o.Recorder, Profiles: o.Profiles,
		NodeClaims: karp.NodeClaims().Lister(), Bootstrap: checker(o.Tokens),
	})
	if err := nodeclass.Register(nc, classes.Informer()); err != nil {
		return nil, err
	}
	ps := controller.New(status.Name, &status.Controller{Karpenter: o.Karpenter, NodePools: karp.NodePools().Lister(),
		NodeClaims: karp.NodeClaims().Lister(), NodeClasses: classes.Lister(), Recorder: o.Recorder, Health: o.Health})
	o.Health.SetChanged(ps.Enqueue)
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
	if err := disruption.Register(dc, claims); err != nil {
		return nil, err
	}
	pe := controller.New(podevents.Name, d.PodEvents())
	if err := podevents.Register(pe, pods); err != nil {
		return nil, err
	}
	gcc := controller.New(garbagecollection.Name, &garbagecollection.Controller{
		Karpenter: o.Karpenter, NodeClaims: karp.NodeClaims().Lister(), Cloud: o.Cloud, Recorder: o.Recorder,
	})
	if err := garbagecollection.Register(gcc); err != nil {
		return nil, err
	}
	sc := controller.New(static.Name, &static.Controller{Karpenter: o.Karpenter, NodePools: karp.NodePools().Lister(),
		NodeClaims: karp.NodeClaims().Lister(), Pools: o.Source, Recorder: o.Recorder})
	if err := static.Register(sc, karp.NodePools().Informer(), claims); err != nil {
		return nil, err
	}
	out := []*controller.Controller{lc, tc, ntc, nc, ps, dc, pe, gcc, sc}
	if o.opts.InterruptionQueue != "" {
		ic := &interruption.Controller{SQS: o.SQS, QueueName: o.opts.InterruptionQueue, Karpenter: o.Karpenter, Kube: o.Kube,
			Nodes: nodes.Lister(), Offerings: o.Catalog, Recorder: o.Recorder}
		icc := controller.New(interruption.Name, ic)
		if err := interruption.Register(icc, claims); err != nil {
			return nil, err
		}
		out = append(out, icc)
	}
	if o.Source.NodeOverlays != nil {
		ovc := controller.New(overlaystatus.Name, &overlaystatus.Controller{Karpenter: o.Karpenter,
			NodeOverlays: o.Source.NodeOverlays, Overlays: o.Source.Overlays, Recorder: o.Recorder})
		if err := overlaystatus.Register(ovc, o.Informers.Karpenter().V1alpha1().NodeOverlays().Informer(),
			karp.NodePools().Informer(), classes.Informer()); err != nil {
			return nil, err
		}
		out = append(out, ovc)
	}
	return out, nil
}

// checker is the token source's check of its credentials, if it has one.
func checker(tokens bootstrap.TokenSource) bootstrap.Checker {
	c, _ := tokens.(bootstrap.Checker)
	return c
}
