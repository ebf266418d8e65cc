package provisioner

import (
	"context"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	fwk "k8s.io/kube-scheduler/framework"

	"github.com/fleet-scheduler/fleet-scheduler/provision/packing"
)

// New builds the plugin from its args. (Wiring to the NodePool informers and
// the EC2 catalogue lands with the API types.)
func New(ctx context.Context, obj runtime.Object, h fwk.Handle) (fwk.Plugin, error) {
	return newProvisioner(ctx, h, noPools{}, nil, time.Second, 10*time.Second), nil
}

type noPools struct{}

func (noPools) Pools() []*packing.Pool { return nil }
func (noPools) InFlight() []InFlight  { return nil }
