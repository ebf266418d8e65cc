// Package nodeclass keeps each EC2NodeClass's status resolved: the subnets,
// security groups and images its selector terms match now, and a Ready
// condition that says whether nodes can be launched from it and, if not, why.
package nodeclass

import (
	"context"
	"errors"
	"slices"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/ptr"

	ec2v1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/ec2/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/bootstrap"
	"github.com/fleet-scheduler/fleet-scheduler/provision/client/clientset/versioned"
	ec2listers "github.com/fleet-scheduler/fleet-scheduler/provision/client/listers/ec2/v1"
	karplisters "github.com/fleet-scheduler/fleet-scheduler/provision/client/listers/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/conditions"
	"github.com/fleet-scheduler/fleet-scheduler/provision/controller"
	"github.com/fleet-scheduler/fleet-scheduler/provision/ec2"
	"github.com/fleet-scheduler/fleet-scheduler/provision/instanceprofile"
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
	// Profiles makes the instance profile of a class that names a role;
	// nil reports such classes not ready. With it every class gets the
	// termination finalizer, and its profile is deleted with it.
	Profiles *instanceprofile.Provider
	// NodeClaims, when set, hold a class's deletion until no NodeClaim
	// launched from it is left.
	NodeClaims karplisters.NodeClaimLister
	// Bootstrap, when set, checks the join credentials nodes are launched
	// with (BootstrapTokenReady), before any launch and every resync.
	Bootstrap bootstrap.Checker
}

// finalizeRetry is how often a class being deleted is looked at while
// NodeClaims still use it.
const finalizeRetry = 10 * time.Second

// Reconcile reconciles the EC2NodeClass the key names.
func (c *Controller) Reconcile(ctx context.Context, key string) (controller.Result, error) {
	return controller.ForObject(c.NodeClasses, c.reconcile).Reconcile(ctx, key)
}

// Register connects the controller to its informer: EC2NodeClass events.
func Register(ctl *controller.Controller, nodeClasses cache.SharedIndexInformer) error {
	return ctl.Watch(nodeClasses)
}

// reconcile resolves one EC2NodeClass. A term that matches nothing is
// reported in status; an AWS call that fails leaves the last resolved
// subnets, groups or images in place and is retried, so throttling never
// takes a working class out of service.
func (c *Controller) reconcile(ctx context.Context, current *ec2v1.EC2NodeClass) (controller.Result, error) {
	if c.Profiles != nil {
		if current.DeletionTimestamp != nil {
			return c.finalize(ctx, current)
		}
		if !slices.Contains(current.Finalizers, ec2v1.TerminationFinalizer) {
			withFinalizer := current.DeepCopy()
			withFinalizer.Finalizers = append(withFinalizer.Finalizers, ec2v1.TerminationFinalizer)
			// The update's event brings the class back for resolving.
			_, err := c.Karpenter.EC2V1().EC2NodeClasses().Update(ctx, withFinalizer, metav1.UpdateOptions{})
			return controller.Result{}, err
		}
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
	failed = errors.Join(failed, c.instanceProfile(ctx, class))
	next := resync
	if c.Bootstrap != nil {
		next = c.bootstrapCondition(ctx, class)
	}
	class.SetCondition(readyCondition(class))
	class.SetCondition(conditions.FieldsNotActedOn(NotActedOn(spec)))

	if !equality.Semantic.DeepEqual(current.Status, class.Status) {
		if _, err := c.Karpenter.EC2V1().EC2NodeClasses().UpdateStatus(ctx, class, metav1.UpdateOptions{}); err != nil {
			return controller.Result{}, errors.Join(err, failed)
		}
		c.announce(current, class)
	}
	if failed != nil {
		return controller.Result{}, failed
	}
	return controller.Result{RequeueAfter: next}, nil
}

// finalize lets a deleted class go once no NodeClaim uses it and the
// instance profile made for its role is gone.
func (c *Controller) finalize(ctx context.Context, class *ec2v1.EC2NodeClass) (controller.Result, error) {
	if !slices.Contains(class.Finalizers, ec2v1.TerminationFinalizer) {
		return controller.Result{}, nil
	}
	if c.NodeClaims != nil {
		claims, err := c.NodeClaims.List(labels.Everything())
		if err != nil {
			return controller.Result{}, err
		}
		n := 0
		for _, nc := range claims {
			if ref := nc.Spec.NodeClassRef; ref != nil && ref.Kind == "EC2NodeClass" && ref.Name == class.Name {
				n++
			}
		}
		if n > 0 {
			c.Recorder.Eventf(class, nil, v1.EventTypeNormal, "WaitingOnNodeClaims", "Finalize",
				"%d NodeClaim(s) launched from this class are still there; deleting when they are gone", n)
			return controller.Result{RequeueAfter: finalizeRetry}, nil
		}
	}
	if err := c.Profiles.Delete(ctx, class.Name); err != nil {
		return controller.Result{}, err
	}
	patched := class.DeepCopy()
	patched.Finalizers = slices.DeleteFunc(patched.Finalizers, func(f string) bool { return f == ec2v1.TerminationFinalizer })
	_, err := c.Karpenter.EC2V1().EC2NodeClasses().Update(ctx, patched, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) {
		err = nil
	}
	return controller.Result{}, err
}

// instanceProfile fills status.instanceProfile: the class's own profile,
// or the one made for its role. Status never names a stale profile.
func (c *Controller) instanceProfile(ctx context.Context, class *ec2v1.EC2NodeClass) error {
	spec := &class.Spec
	if spec.InstanceProfile != nil || spec.Role == "" {
		class.Status.InstanceProfile = ptr.Deref(spec.InstanceProfile, "")
		class.SetCondition(metav1.Condition{Type: ec2v1.ConditionTypeInstanceProfileReady, Status: metav1.ConditionTrue,
			Reason: ec2v1.ConditionTypeInstanceProfileReady})
		return nil
	}
	if c.Profiles == nil {
		class.Status.InstanceProfile = ""
		class.SetCondition(metav1.Condition{Type: ec2v1.ConditionTypeInstanceProfileReady, Status: metav1.ConditionFalse,
			Reason: "NoIAMClient", Message: "spec.role needs an instance profile made, and this controller has no IAM client"})
		return nil
	}
	if class.Status.InstanceProfile != "" && class.Status.InstanceProfile != c.Profiles.Name(class.Name) {
		class.Status.InstanceProfile = "" // it was the class's own until now
	}
	name, err := c.Profiles.Ensure(ctx, class.Name, spec.Role)
	var missing *instanceprofile.RoleNotFoundError
	if errors.As(err, &missing) {
		class.Status.InstanceProfile = ""
		class.SetCondition(metav1.Condition{Type: ec2v1.ConditionTypeInstanceProfileReady, Status: metav1.ConditionFalse,
			Reason: "RoleNotFound", Message: err.Error()})
		return nil
	}
	return record(class, ec2v1.ConditionTypeInstanceProfileReady, "InstanceProfileFailed", err, func() {
		class.Status.InstanceProfile = name
	})
}

// announce sends an event when Ready turns False, when the reason it is
// False changes, or when the list of fields not acted on changes; not on
// every status write.
func (c *Controller) announce(before, after *ec2v1.EC2NodeClass) {
	if cond := after.GetCondition(ec2v1.ConditionTypeBootstrapTokenReady); cond != nil && cond.Status == metav1.ConditionFalse && changed(before, cond) {
		c.Recorder.Eventf(after, nil, v1.EventTypeWarning, cond.Reason, "CheckJoinCredentials", "%s", cond.Message)
	}
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
