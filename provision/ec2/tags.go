package ec2

import (
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"regexp"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// Tag keys. These are the keys Karpenter's AWS provider puts on what it
// creates, so Karpenter's IAM policy conditions and tooling that looks for
// them work unchanged.
const (
	TagNodeClaim = "karpenter.sh/nodeclaim"
	TagNodePool  = "karpenter.sh/nodepool"
	TagNodeClass = "karpenter.k8s.aws/ec2nodeclass"
	// TagEKSClusterName names the cluster on instances and volumes.
	TagEKSClusterName = "eks:eks-cluster-name"
	// TagManagedLaunchTemplate names the cluster on launch templates.
	TagManagedLaunchTemplate = "karpenter.k8s.aws/cluster"
	TagName                  = "Name"
	clusterTagPrefix         = "kubernetes.io/cluster/"
)

// ClusterTagKey is kubernetes.io/cluster/<cluster>, valued "owned".
func ClusterTagKey(cluster string) string { return clusterTagPrefix + cluster }

// instanceTags are the tags of the instance and its volumes: the request's
// extra tags overlaid with the ones that identify cluster, pool and claim.
func instanceTags(req *LaunchRequest) map[string]string {
	tags := make(map[string]string, len(req.Tags)+6)
	for k, v := range req.Tags {
		tags[k] = v
	}
	tags[ClusterTagKey(req.ClusterName)] = "owned"
	tags[TagEKSClusterName] = req.ClusterName
	tags[TagNodePool] = req.NodePoolName
	tags[TagNodeClaim] = req.NodeClaimName
	tags[TagName] = req.NodeClaimName
	if req.NodeClassName != "" {
		tags[TagNodeClass] = req.NodeClassName
	}
	return tags
}

// launchTemplateTags are the instance tags plus the managed-template marker.
func launchTemplateTags(req *LaunchRequest) map[string]string {
	tags := instanceTags(req)
	tags[TagManagedLaunchTemplate] = req.ClusterName
	return tags
}

func toEC2Tags(m map[string]string) []ec2types.Tag {
	out := make([]ec2types.Tag, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, ec2types.Tag{Key: aws.String(k), Value: aws.String(m[k])})
	}
	return out
}

func fromEC2Tags(tags []ec2types.Tag) map[string]string {
	out := make(map[string]string, len(tags))
	for _, t := range tags {
		out[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return out
}

// Launch template names allow 3-128 characters from this set.
var ltNameChars = regexp.MustCompile(`^[a-zA-Z0-9().\-/_]{3,128}$`)

const launchTemplatePrefix = "fleet-scheduler/"

// LaunchTemplateName is the name of the launch template of a claim:
// fleet-scheduler/<cluster>/<claim>, or a hash of the two when that is not
// a valid launch template name.
func LaunchTemplateName(cluster, claim string) string {
	name := launchTemplatePrefix + cluster + "/" + claim
	if ltNameChars.MatchString(name) {
		return name
	}
	sum := sha256.Sum256([]byte(cluster + "\x00" + claim))
	return launchTemplatePrefix + hex.EncodeToString(sum[:20])
}
