package provisioner

import (
	"context"
	"fmt"
	"reflect"
	"sync"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	componentbaseconfig "k8s.io/component-base/config"
	fwk "k8s.io/kube-scheduler/framework"
	frameworkruntime "k8s.io/kubernetes/pkg/scheduler/framework/runtime"

	"github.com/fleet-scheduler/fleet-scheduler/plugins/apis/config"
	"github.com/fleet-scheduler/fleet-scheduler/plugins/apis/config/validation"
	"github.com/fleet-scheduler/fleet-scheduler/provision/operator"
)

// Lease the provisioning controllers run under; the scheduler's own
// leader election decides who schedules, this one who launches.
const (
	leaseNamespace = "kube-system"
	leaseName      = "fleet-scheduler-provisioning"
)

// New builds the plugin from its validated args. kube-scheduler calls it
// once per profile; the first call starts the provisioning operator and
// the claim set, later ones share them (and must carry the same args).
func New(ctx context.Context, obj runtime.Object, h fwk.Handle) (fwk.Plugin, error) {
	return newPlugin(ctx, obj, h, nil)
}

// NewWithLeaderElection is New for a process whose scheduler elects its
// leader with le (read when the plugin is built): the provisioning
// controllers' Lease follows its leaderElect and timings.
func NewWithLeaderElection(le *componentbaseconfig.LeaderElectionConfiguration) frameworkruntime.PluginFactory {
	return func(ctx context.Context, obj runtime.Object, h fwk.Handle) (fwk.Plugin, error) {
		return newPlugin(ctx, obj, h, le)
	}
}

func newPlugin(ctx context.Context, obj runtime.Object, h fwk.Handle, le *componentbaseconfig.LeaderElectionConfiguration) (fwk.Plugin, error) {
	// plugins/apis/config/scheme has decoded and defaulted obj already.
	args, ok := obj.(*config.ProvisionerArgs)
	if !ok {
		return nil, fmt.Errorf("want args to be of type ProvisionerArgs, got %T", obj)
	}
	if err := validation.ValidateProvisionerArgs(field.NewPath("provisionerArgs"), args); err != nil {
		return nil, err
	}
	st, err := process.get(ctx, args, h, le)
	if err != nil {
		return nil, err
	}
	return &Provisioner{handle: h, state: st}, nil
}

// process holds the one provisioning state of this process. It is the only
// package-level state: kube-scheduler offers plugins no wider scope than a
// profile, and the cluster has one set of claims.
var process sharedState

type sharedState struct {
	mu    sync.Mutex
	args  *config.ProvisionerArgs
	state *state
}

func (s *sharedState) get(ctx context.Context, args *config.ProvisionerArgs, h fwk.Handle, le *componentbaseconfig.LeaderElectionConfiguration) (*state, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != nil {
		if !reflect.DeepEqual(s.args, args) {
			return nil, fmt.Errorf("provisionerArgs: every profile that enables %s must give it the same args", Name)
		}
		return s.state, nil
	}
	st, err := build(ctx, args, h, leaseName, le)
	if err != nil {
		return nil, err
	}
	s.args, s.state = args, st
	return st, nil
}

// build starts the provisioning operator (its controllers under the named
// Lease, elected as le says; no Lease means no leader election) and a
// fresh claim set on it.
func build(ctx context.Context, args *config.ProvisionerArgs, h fwk.Handle, lease string, le *componentbaseconfig.LeaderElectionConfiguration) (*state, error) {
	opts := operatorOptions(args)
	opts.LeaseName, opts.LeaderElection = lease, le
	op, err := operator.New(ctx, h.KubeConfig(), opts)
	if err != nil {
		return nil, err
	}
	if err := op.Start(ctx); err != nil {
		return nil, err
	}
	return newState(ctx, h, op.Source, op.Creator, args.BatchIdleDuration.Duration, args.BatchMaxDuration.Duration), nil
}

func operatorOptions(args *config.ProvisionerArgs) operator.Options {
	return operator.Options{
		ClusterName:             args.ClusterName,
		Region:                  args.Region,
		ClusterEndpoint:         args.ClusterEndpoint,
		TokenSSMParameter:       args.Bootstrap.TokenSSMParameter,
		CACertHashSSMParameter:  args.Bootstrap.CACertHashSSMParameter,
		TokenTTL:                args.Bootstrap.TokenTTL.Duration,
		RegistrationTTL:         args.RegistrationTTL.Duration,
		VMMemoryOverheadPercent: args.VMMemoryOverheadPercent,
		DisruptionInterval:      args.DisruptionInterval.Duration,
		InterruptionQueue:       args.InterruptionQueue,
		LeaseNamespace:          leaseNamespace,
		CallTimeouts:            operator.CallTimeouts(args.AWSCallTimeouts),
		PauseAfterUnregistered:  int(args.UnregisteredNodesToPause),
	}
}
