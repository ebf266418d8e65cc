// Package operator assembles the provisioning side of fleet-scheduler from
// its settings: Kubernetes and AWS clients, informers, the instance
// catalogue, the NodePool source the Provisioner plugin packs onto, and the
// controllers that launch, register and terminate NodeClaims.
package operator

import (
	"context"
	"fmt"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/events"
	componentbaseconfig "k8s.io/component-base/config"
	"k8s.io/klog/v2"

	"github.com/fleet-scheduler/fleet-scheduler/plugins/apis/config"
	"github.com/fleet-scheduler/fleet-scheduler/provision/bootstrap"
	"github.com/fleet-scheduler/fleet-scheduler/provision/catalog"
	"github.com/fleet-scheduler/fleet-scheduler/provision/client/clientset/versioned"
	clientscheme "github.com/fleet-scheduler/fleet-scheduler/provision/client/clientset/versioned/scheme"
	"github.com/fleet-scheduler/fleet-scheduler/provision/client/informers/externalversions"
	"github.com/fleet-scheduler/fleet-scheduler/provision/cloudprovider/aws"
	"github.com/fleet-scheduler/fleet-scheduler/provision/ec2"
	"github.com/fleet-scheduler/fleet-scheduler/provision/instanceprofile"
	"github.com/fleet-scheduler/fleet-scheduler/provision/interruption"
	"github.com/fleet-scheduler/fleet-scheduler/provision/launchhealth"
	"github.com/fleet-scheduler/fleet-scheduler/provision/metrics"
	"github.com/fleet-scheduler/fleet-scheduler/provision/nodeoverlay"
	"github.com/fleet-scheduler/fleet-scheduler/provision/nodepool"
	"github.com/fleet-scheduler/fleet-scheduler/provision/operator/clients"
	"github.com/fleet-scheduler/fleet-scheduler/provision/pricing"
)

// Options are the provisioning settings (the Provisioner plugin args).
type Options struct {
	ClusterName             string
	Region                  string
	ClusterEndpoint         string
	TokenSSMParameter       string
	CACertHashSSMParameter  string
	TokenTTL                time.Duration
	RegistrationTTL         time.Duration
	VMMemoryOverheadPercent float64
	// DisruptionInterval is the period of the scale-down loop.
	DisruptionInterval time.Duration
	// InterruptionQueue names the SQS queue of EC2 interruption events;
	// empty: interruption handling is off.
	InterruptionQueue string
	// CallTimeouts bound every AWS call.
	CallTimeouts ec2.CallTimeouts
	// PauseAfterUnregistered is how many launched nodes of a NodePool in
	// a row may never register before its launches pause (3 when zero).
	PauseAfterUnregistered int
	// LeaseNamespace and LeaseName name the Lease the controllers run under
	// (the scheduler's own leader election is separate).
	LeaseNamespace, LeaseName string
	// Identity is this process in the Lease; a random one when empty.
	Identity string
	// LeaderElection is the scheduler's leaderElection: with leaderElect
	// false the controllers run without a Lease (this process is the only
	// one); otherwise they hold theirs with its lease duration, renew
	// deadline and retry period. Nil: elected with kube-scheduler's defaults.
	LeaderElection *componentbaseconfig.LeaderElectionConfiguration
	// AWS is the SDK configuration the AWS clients start from; nil loads
	// the SDK's default chain (environment, shared files, instance role).
	// Region, when set, overrides its region either way.
	AWS *awssdk.Config
}

// Operator holds the provisioning parts, shared by every profile.
type Operator struct {
	opts          Options
	Kube          kubernetes.Interface
	Karpenter     versioned.Interface
	Informers     externalversions.SharedInformerFactory
	KubeInformers informers.SharedInformerFactory
	Catalog       *catalog.ClassOptions
	Source        *nodepool.Source
	Creator       *nodepool.Creator
	Cloud         *aws.Provider
	EC2           *ec2.Provider
	Resolver      *ec2.Resolver
	Profiles      *instanceprofile.Provider
	Tokens        bootstrap.TokenSource
	// Health is what each NodePool's launches said (backoff, nodes that
	// never registered).
	Health *launchhealth.Tracker
	// SQS reads the interruption queue; nil when none is set.
	SQS         *sqs.Client
	broadcaster events.EventBroadcaster
	Recorder    events.EventRecorder
	catalog     *catalog.Catalog
	spot        *pricing.Live
}

// Prices are the on-demand and spot prices the catalogue is built with.
func (o *Operator) Prices() *pricing.Live { return o.spot }

// New builds every part; nothing runs until Start.
func New(ctx context.Context, cfg *rest.Config, opts Options) (*Operator, error) {
	metrics.Register()
	kube, karp, err := clients.New(cfg)
	if err != nil {
		return nil, err
	}
	awsCfg, err := awsConfig(ctx, opts)
	if err != nil {
		return nil, err
	}
	if awsCfg.Region == "" {
		return nil, fmt.Errorf("no AWS region: set region in the Provisioner args or AWS_REGION")
	}
	ec2Client := ec2.NewEC2Client(awsCfg, ec2.RetryOptions{})
	ssmClient := ec2.NewSSMClient(awsCfg, ec2.RetryOptions{})

	o := &Operator{opts: opts, Kube: kube, Karpenter: karp}
	o.Informers = externalversions.NewSharedInformerFactory(karp, 0)
	o.KubeInformers = informers.NewSharedInformerFactory(kube, 0)
	if o.spot, err = pricing.NewLive(ec2Client); err != nil {
		return nil, err
	}
	overhead := opts.VMMemoryOverheadPercent
	if o.catalog, err = catalog.New(ec2Client, o.spot, catalog.Options{Region: awsCfg.Region, VMMemoryOverheadPercent: &overhead}); err != nil {
		return nil, err
	}
	o.catalog.SpotRefresher = o.spot.RefreshSpot
	o.Catalog = &catalog.ClassOptions{Catalog: o.catalog}

	karpInformers := o.Informers.Karpenter().V1()
	o.Source = &nodepool.Source{
		NodePools:   karpInformers.NodePools().Lister(),
		NodeClaims:  karpInformers.NodeClaims().Lister(),
		NodeClasses: o.Informers.EC2().V1().EC2NodeClasses().Lister(),
		DaemonSets:  o.KubeInformers.Apps().V1().DaemonSets().Lister(),
		Catalog:     o.Catalog,
		// The cloud provider launches claims with the overlays' evaluation.
		OverlayStore: &nodeoverlay.Store{},
	}
	o.Creator = &nodepool.Creator{Client: karp, NodePools: karpInformers.NodePools().Lister()}
	metrics.RegisterNodePools(karpInformers.NodePools().Lister())

	if opts.TokenSSMParameter != "" || opts.CACertHashSSMParameter != "" {
		o.Tokens, err = bootstrap.NewSSMTokenSource(ssmClient, bootstrap.SSMConfig{
			TokenParameter: opts.TokenSSMParameter, CACertHashParameter: opts.CACertHashSSMParameter, Client: kube,
		})
	} else {
		o.Tokens, err = bootstrap.NewMintedTokenSource(kube, bootstrap.MintedConfig{TTL: opts.TokenTTL})
	}
	if err != nil {
		return nil, fmt.Errorf("bootstrap token source: %w", err)
	}
	o.EC2 = ec2.NewProvider(ec2Client, ec2.ProviderOptions{})
	o.Resolver = ec2.NewResolver(ec2Client, ssmClient, ec2.ResolverOptions{})
	if opts.InterruptionQueue != "" {
		o.SQS = ec2.NewSQSClient(awsCfg, ec2.RetryOptions{})
	}
	o.Profiles = &instanceprofile.Provider{IAM: ec2.NewIAMClient(awsCfg, ec2.RetryOptions{}), ClusterName: opts.ClusterName, Region: awsCfg.Region}
	o.Health = launchhealth.New(launchhealth.Options{PauseAfter: opts.PauseAfterUnregistered})
	o.Cloud = &aws.Provider{
		ClusterName: opts.ClusterName, Endpoint: opts.ClusterEndpoint, EC2: o.EC2, Catalog: o.Catalog,
		NodePools: o.Source.NodePools, NodeClasses: o.Source.NodeClasses, Overlays: o.Source.OverlayStore, Tokens: o.Tokens, Kube: kube,
		UnavailableTTL: interruption.DefaultUnavailableTTL, Health: o.Health,
	}
	o.broadcaster = events.NewBroadcaster(&events.EventSinkImpl{Interface: kube.EventsV1()})
	// Events regard our objects and core ones (Nodes, Pods): the scheme knows both.
	eventScheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(eventScheme); err != nil {
		return nil, err
	}
	if err := clientscheme.AddToScheme(eventScheme); err != nil {
		return nil, err
	}
	o.Recorder = o.broadcaster.NewRecorder(eventScheme, "fleet-scheduler")
	klog.FromContext(ctx).V(2).Info("Provisioning configured", "cluster", opts.ClusterName, "region", awsCfg.Region,
		"bootstrap", fmt.Sprintf("%T", o.Tokens))
	return o, nil
}

// CallTimeouts are the AWS call deadlines of the Provisioner args.
func CallTimeouts(t config.AWSCallTimeouts) ec2.CallTimeouts {
	out := ec2.CallTimeouts{Default: t.Default.Duration, PerCall: make(map[string]time.Duration, len(t.PerCall))}
	for op, d := range t.PerCall {
		out.PerCall[op] = d.Duration
	}
	return out
}

// awsConfig is opts.AWS, or the SDK's default chain without it, with
// opts.Region over either and opts.CallTimeouts on every call.
func awsConfig(ctx context.Context, opts Options) (awssdk.Config, error) {
	if opts.AWS != nil {
		cfg := opts.AWS.Copy()
		if opts.Region != "" {
			cfg.Region = opts.Region
		}
		return opts.CallTimeouts.Apply(cfg), nil
	}
	cfg, err := ec2.LoadDefaultConfig(ctx, opts.Region)
	if err != nil {
		return cfg, fmt.Errorf("loading AWS configuration: %w", err)
	}
	return opts.CallTimeouts.Apply(cfg), nil
}
