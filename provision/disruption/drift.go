package disruption

import (
	"context"
	"fmt"
	"sort"
	"strconv"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/klog/v2"

	ec2v1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/ec2/v1"
	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/cloudprovider"
	"github.com/fleet-scheduler/fleet-scheduler/provision/nodepool"
)

// Drift reasons, as the Drifted condition's reason.
const (
	DriftReasonNodePool     = "NodePoolDrifted"
	DriftReasonRequirements = "RequirementsDrifted"
	DriftReasonAMI          = "AMIDrifted"
	DriftReasonNodeClass    = "NodeClassDrifted"
	DriftReasonSubnet       = "SubnetDrifted"
	DriftReasonSecurityGrp  = "SecurityGroupDrifted"
)

// drift replaces drifted nodes within the budget, oldest first. A node
// whose pods fit on the other nodes is deleted; otherwise one node made
// from the current template is launched for them first, when one holds
// them all; failing that the node is deleted and its pods provisioned for
// again.
func (l *loop) drift(ctx context.Context) {
	drifted := l.filter(func(k *candidate) bool { return k.initialized && k.driftReason != "" })
	sort.SliceStable(drifted, func(i, j int) bool {
		return drifted[i].claim.CreationTimestamp.Before(&drifted[j].claim.CreationTimestamp)
	})
	for _, k := range drifted {
		if !l.mayDisrupt(k, karpv1.DisruptionReasonDrifted) {
			continue
		}
		message := k.driftReason + ": " + k.driftMsg
		if l.c.pools != nil && k.node != nil && len(k.movable) > 0 {
			if placed, why := l.relocateOrReplace(ctx, k, karpv1.DisruptionReasonDrifted, message, 0); placed == "" {
				klog.FromContext(ctx).V(2).Info("Drifted node not replaced ahead; deleting it", "nodeClaim", k.claim.Name, "why", why)
			} else if placed == replaced {
				continue
			} else {
				message += "; " + placed
			}
		}
		l.disrupt(ctx, k, string(karpv1.DisruptionReasonDrifted), message)
	}
}

// drift says whether and why a claim no longer matches what its pool (and
// its node class) would make today; "" when it does, or when that cannot be
// told.
// m is the claim's machine as last listed, nil when unknown.
func drift(nc *karpv1.NodeClaim, np *karpv1.NodePool, poolHash string, class *ec2v1.EC2NodeClass, m *cloudprovider.Machine) (reason, message string) {
	if h, ok := nc.Annotations[karpv1.NodePoolHashAnnotationKey]; ok &&
		nc.Annotations[karpv1.NodePoolHashVersionAnnotationKey] == nodepool.NodePoolHashVersion && h != poolHash {
		return DriftReasonNodePool, fmt.Sprintf("NodePool %s's template changed since the claim was made (hash %s, now %s)", np.Name, h, poolHash)
	}
	if msg := requirementsDrift(nc, np); msg != "" {
		return DriftReasonRequirements, msg
	}
	if msg := amiDrift(nc, class); msg != "" {
		return DriftReasonAMI, msg
	}
	if msg := nodeClassDrift(nc, class); msg != "" {
		return DriftReasonNodeClass, msg
	}
	if msg := subnetDrift(m, class); msg != "" {
		return DriftReasonSubnet, msg
	}
	if msg := securityGroupDrift(m, class); msg != "" {
		return DriftReasonSecurityGrp, msg
	}
	return "", ""
}

// requirementsDrift reports a requirement of the pool that the claim's
// labels no longer satisfy (an instance type, zone or capacity type taken
// out of the pool, for example). Requirements on labels the claim does not
// carry are not judged.
func requirementsDrift(nc *karpv1.NodeClaim, np *karpv1.NodePool) string {
	for _, r := range np.Spec.Template.Spec.Requirements {
		v, has := nc.Labels[r.Key]
		ok := true
		switch r.Operator {
		case v1.NodeSelectorOpIn:
			ok = !has || contains(r.Values, v)
		case v1.NodeSelectorOpNotIn:
			ok = !has || !contains(r.Values, v)
		case v1.NodeSelectorOpDoesNotExist:
			ok = !has
		case v1.NodeSelectorOpGt, v1.NodeSelectorOpLt, "Gte", "Lte":
			ok = !has || compareInt(v, r.Operator, r.Values)
		}
		if !ok {
			return fmt.Sprintf("label %s=%q no longer satisfies NodePool %s's requirement %s %s %v", r.Key, v, np.Name, r.Key, r.Operator, r.Values)
		}
	}
	return ""
}

func compareInt(v string, op v1.NodeSelectorOperator, values []string) bool {
	if len(values) != 1 {
		return true
	}
	have, err1 := strconv.ParseInt(v, 10, 64)
	want, err2 := strconv.ParseInt(values[0], 10, 64)
	if err1 != nil || err2 != nil {
		return true
	}
	switch op {
	case v1.NodeSelectorOpGt:
		return have > want
	case v1.NodeSelectorOpLt:
		return have < want
	case "Gte":
		return have >= want
	case "Lte":
		return have <= want
	}
	return true
}

// amiDrift reports a claim whose instance runs an image its EC2NodeClass no
// longer resolves to. Nothing is judged while the class is unknown, not
// Ready or resolves no image.
func amiDrift(nc *karpv1.NodeClaim, class *ec2v1.EC2NodeClass) string {
	if class == nil || nc.Status.ImageID == "" || len(class.Status.AMIs) == 0 ||
		!meta.IsStatusConditionTrue(class.Status.Conditions, ec2v1.ConditionTypeReady) {
		return ""
	}
	for _, ami := range class.Status.AMIs {
		if ami.ID == nc.Status.ImageID {
			return ""
		}
	}
	return fmt.Sprintf("image %s is no longer among EC2NodeClass %s's resolved AMIs", nc.Status.ImageID, class.Name)
}

// nodeClassDrift reports a claim launched from an EC2NodeClass spec that
// has changed since (user data, tags, block devices, metadata options...).
// Claims launched before the hash was recorded, or with another hash
// version, are not judged.
func nodeClassDrift(nc *karpv1.NodeClaim, class *ec2v1.EC2NodeClass) string {
	h, ok := nc.Annotations[ec2v1.AnnotationEC2NodeClassHash]
	if class == nil || !ok || nc.Annotations[ec2v1.AnnotationEC2NodeClassHashVersion] != ec2v1.EC2NodeClassHashVersion {
		return ""
	}
	if now := class.Hash(); now != h {
		return fmt.Sprintf("EC2NodeClass %s's spec changed since the instance was launched (hash %s, now %s)", class.Name, h, now)
	}
	return ""
}

// resolved is the class when it is Ready; nil otherwise, when what it
// selects cannot be told.
func resolved(class *ec2v1.EC2NodeClass) *ec2v1.EC2NodeClass {
	if class == nil || !meta.IsStatusConditionTrue(class.Status.Conditions, ec2v1.ConditionTypeReady) {
		return nil
	}
	return class
}

// subnetDrift reports a machine in a subnet its EC2NodeClass no longer
// selects.
func subnetDrift(m *cloudprovider.Machine, class *ec2v1.EC2NodeClass) string {
	class = resolved(class)
	if m == nil || m.SubnetID == "" || class == nil || len(class.Status.Subnets) == 0 {
		return ""
	}
	for _, s := range class.Status.Subnets {
		if s.ID == m.SubnetID {
			return ""
		}
	}
	return fmt.Sprintf("subnet %s is no longer among EC2NodeClass %s's subnets", m.SubnetID, class.Name)
}

// securityGroupDrift reports a machine whose security groups are not
// exactly those its EC2NodeClass selects now. A machine whose groups are
// not known is not judged.
func securityGroupDrift(m *cloudprovider.Machine, class *ec2v1.EC2NodeClass) string {
	class = resolved(class)
	if m == nil || len(m.SecurityGroupIDs) == 0 || class == nil || len(class.Status.SecurityGroups) == 0 {
		return ""
	}
	want := sets.New[string]()
	for _, g := range class.Status.SecurityGroups {
		want.Insert(g.ID)
	}
	if have := sets.New(m.SecurityGroupIDs...); !have.Equal(want) {
		return fmt.Sprintf("security groups %v are not EC2NodeClass %s's %v", sets.List(have), class.Name, sets.List(want))
	}
	return ""
}

func contains(values []string, v string) bool {
	for _, x := range values {
		if x == v {
			return true
		}
	}
	return false
}
