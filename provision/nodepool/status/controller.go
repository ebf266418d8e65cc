// Package status keeps each NodePool's status, as Karpenter's NodePool
// controllers do: ValidationSucceeded (the runtime checks CEL cannot do),
// NodeClassReady, Ready, the summed capacity and count of the pool's nodes,
// and FieldsNotActedOn, which names what fleet-scheduler accepts but does
// not do yet.
package status

import (
	"context"
	"errors"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/events"

	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/client/clientset/versioned"
	ec2listers "github.com/fleet-scheduler/fleet-scheduler/provision/client/listers/ec2/v1"
	karplisters "github.com/fleet-scheduler/fleet-scheduler/provision/client/listers/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/conditions"
	"github.com/fleet-scheduler/fleet-scheduler/provision/controller"
	"github.com/fleet-scheduler/fleet-scheduler/provision/launchhealth"
)

// Name is the controller's name.
const Name = "nodepool.status"

// Controller writes NodePool status.
type Controller struct {
	Karpenter   versioned.Interface
	NodePools   karplisters.NodePoolLister
	NodeClaims  karplisters.NodeClaimLister
	NodeClasses ec2listers.EC2NodeClassLister
	Recorder    events.EventRecorder
	// Health is what the pools' launches said; nil: no Launchable or
	// NodeRegistrationHealthy condition is kept.
	Health *launchhealth.Tracker
}

// Reconcile reconciles the NodePool the key names.
func (c *Controller) Reconcile(ctx context.Context, key string) (controller.Result, error) {
	return controller.ForObject(c.NodePools, c.reconcile).Reconcile(ctx, key)
}

// reconcile computes one NodePool's status and writes it if it changed.
func (c *Controller) reconcile(ctx context.Context, current *karpv1.NodePool) (controller.Result, error) {
	pool := current.DeepCopy()

	pool.SetCondition(validationCondition(Validate(pool)))
	classReady, generation, err := c.nodeClassReady(pool)
	if err != nil {
		return controller.Result{}, err
	}
	pool.SetCondition(classReady)
	if generation != nil {
		pool.Status.NodeClassObservedGeneration = *generation
	}
	pool.SetCondition(readyCondition(pool))
	c.healthConditions(current, pool)
	pool.SetCondition(conditions.FieldsNotActedOn(NotActedOn(&pool.Spec)))
	if pool.Status.Resources, pool.Status.Nodes, err = c.usage(pool.Name); err != nil {
		return controller.Result{}, err
	}

	if equality.Semantic.DeepEqual(current.Status, pool.Status) {
		return controller.Result{}, nil
	}
	if _, err := c.Karpenter.KarpenterV1().NodePools().UpdateStatus(ctx, pool, metav1.UpdateOptions{}); err != nil {
		return controller.Result{}, err
	}
	c.announce(current, pool)
	// Only on a change of the list, not on every status write.
	if cond := pool.GetCondition(ConditionTypeFieldsNotActedOn); cond.Status == metav1.ConditionTrue {
		if prev := current.GetCondition(ConditionTypeFieldsNotActedOn); prev == nil || prev.Status != cond.Status || prev.Message != cond.Message {
			c.Recorder.Eventf(pool, nil, v1.EventTypeWarning, "FieldsNotActedOn", "Validate", "%s", cond.Message)
		}
	}
	return controller.Result{}, nil
}

// Register connects the controller to its informers: NodePool events, and
// NodeClaim and EC2NodeClass events mapped to the pools they belong to or
// are referenced by.
func Register(ctl *controller.Controller, nodePools, nodeClaims, nodeClasses cache.SharedIndexInformer) error {
	return errors.Join(
		ctl.Watch(nodePools),
		ctl.WatchMapped(nodeClaims, func(obj any) []string {
			if claim, ok := unwrap(obj).(*karpv1.NodeClaim); ok && claim.Labels[karpv1.NodePoolLabelKey] != "" {
				return []string{claim.Labels[karpv1.NodePoolLabelKey]}
			}
			return nil
		}),
		ctl.WatchMapped(nodeClasses, func(obj any) []string {
			class, ok := unwrap(obj).(metav1.Object)
			if !ok {
				return nil
			}
			var keys []string
			for _, o := range nodePools.GetStore().List() {
				if np, ok := o.(*karpv1.NodePool); ok && refersTo(np, class.GetName()) {
					keys = append(keys, np.Name)
				}
			}
			return keys
		}),
	)
}

// unwrap returns the object inside a deletion tombstone.
func unwrap(obj any) any {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		return t.Obj
	}
	return obj
}
