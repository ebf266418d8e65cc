package world

import (
	"path/filepath"

	"github.com/fleet-scheduler/fleet-scheduler/hack/sandbox/controlplane"
	"github.com/fleet-scheduler/fleet-scheduler/hack/sandbox/proc"
)

// startControllerManager starts kube-controller-manager; seedCluster waits
// for its health once the cluster's objects are in.
func (w *World) startControllerManager(b *boot) error {
	kcmPort, err := controlplane.FreePort()
	if err != nil {
		return err
	}
	kcm, err := proc.Start(proc.Spec{
		Name: "kube-controller-manager", Path: b.bins.ControllerManager, Env: baseEnv(),
		Args: controlplane.ControllerManagerArgs(w.PKI, b.kcmConf.Path, kcmPort, filepath.Join(w.Dir, "controller-manager"),
			ClusterName, w.NodeMonitorGracePeriod),
		LogPath: filepath.Join(b.logs, "kube-controller-manager.log"),
	})
	if err != nil {
		return err
	}
	w.watch(kcm)
	b.kcm, b.kcmPort = kcm, kcmPort
	return nil
}
