// Package nodeclass keeps each EC2NodeClass's status resolved: the subnets,
// security groups and images its selector terms match now, and a Ready
// condition that says whether nodes can be launched from it and, if not, why.
package nodeclass

import (
	"context"
	"errors"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/ptr"

	ec2v1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/ec2/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/client/clientset/versioned"
	ec2listers "github.com/fleet-scheduler/fleet-scheduler/provision/client/listers/ec2/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/controller"
	"github.com/fleet-scheduler/fleet-scheduler/provision/ec2"
)

// Name is the controller's name.
const Name = "ec2nodeclass.status"

// resync is how often selector terms are resolved again: tags on subnets
// and images change outside Kubernetes.
const resync = time.Minute

// Controller resolves EC2NodeClass selector terms into status.
type Controller struct {
	Karpenter   versioned.Interface
	NodeClasses ec2listers.EC2NodeClassLister
	Resolver    *ec2.Resolver
	Recorder    events.EventRecorder
}

// Reconcile resolves one EC2NodeClass. A term that matches nothing is
// reported in status; an AWS call that fails leaves the last resolved
// subnets, groups or images in place and is retried, so throttling never
// takes a working class out of service.
func (c *Controller) Reconcile(ctx context.Context, key string) (controller.Result, error) {
	_, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return controller.Result{}, nil
	}
	current, err := c.NodeClasses.Get(name)
	if apierrors.IsNotFound(err) {
		return controller.Result{}, nil
	}
	if err != nil {
		return controller.Result{}, err
	}
	class := current.DeepCopy()
	spec := &class.Spec

	subnets, err := c.Resolver.Subnets(ctx, subnetTerms(spec.SubnetSelectorTerms))
	failed := record(class, ec2v1.ConditionTypeSubnetsReady, "SubnetsNotFound", err, func() {
		class.Status.Subnets = nil
		for _, s := range subnets {
			class.Status.Subnets = append(class.Status.Subnets, ec2v1.Subnet{ID: s.ID, Zone: s.Zone, ZoneID: s.ZoneID})
		}
	})
	groups, err := c.Resolver.SecurityGroups(ctx, securityGroupTerms(spec.SecurityGroupSelectorTerms))
	failed = errors.Join(failed, record(class, ec2v1.ConditionTypeSecurityGroupsReady, "SecurityGroupsNotFound", err, func() {
		class.Status.SecurityGroups = nil
		for _, g := range groups {
			class.Status.SecurityGroups = append(class.Status.SecurityGroups, ec2v1.SecurityGroup{ID: g.ID, Name: g.Name})
		}
	}))
	images, err := c.Resolver.AMIs(ctx, amiTerms(spec.AMISelectorTerms))
	failed = errors.Join(failed, record(class, ec2v1.ConditionTypeAMIsReady, "AMINotFound", err, func() {
		class.Status.AMIs = nil
		for _, a := range images {
			class.Status.AMIs = append(class.Status.AMIs, ec2v1.AMI{ID: a.ID, Name: a.Name, Requirements: []v1.NodeSelectorRequirement{
				{Key: v1.LabelArchStable, Operator: v1.NodeSelectorOpIn, Values: []string{a.Architecture}},
			}})
		}
	}))
	// Cleared too when instanceProfile is removed, so status never names a stale profile.
	class.Status.InstanceProfile = ptr.Deref(spec.InstanceProfile, "")
	class.SetCondition(readyCondition(class))
	class.SetCondition(notActedOnCondition(NotActedOn(spec)))

	if !equality.Semantic.DeepEqual(current.Status, class.Status) {
		if _, err := c.Karpenter.EC2V1().EC2NodeClasses().UpdateStatus(ctx, class, metav1.UpdateOptions{}); err != nil {
			return controller.Result{}, errors.Join(err, failed)
		}
		c.announce(current, class)
	}
	if failed != nil {
		return controller.Result{}, failed
	}
	return controller.Result{RequeueAfter: resync}, nil
}

// announce sends an event when Ready turns False, when the reason it is
// False changes, or when the list of fields not acted on changes; not on
// every status write.
func (c *Controller) announce(before, after *ec2v1.EC2NodeClass) {
	if cond := after.GetCondition(ec2v1.ConditionTypeReady); cond.Status == metav1.ConditionFalse && changed(before, cond) {
		c.Recorder.Eventf(after, nil, v1.EventTypeWarning, "NotReady", "Resolve", "%s", cond.Message)
	}
	if cond := after.GetCondition(ConditionTypeFieldsNotActedOn); cond.Status == metav1.ConditionTrue && changed(before, cond) {
		c.Recorder.Eventf(after, nil, v1.EventTypeWarning, "FieldsNotActedOn", "Validate", "%s", cond.Message)
	}
}

func changed(before *ec2v1.EC2NodeClass, now *metav1.Condition) bool {
	prev := before.GetCondition(now.Type)
	return prev == nil || prev.Status != now.Status || prev.Message != now.Message
}
