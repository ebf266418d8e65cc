package ec2

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"k8s.io/klog/v2"
)

// MaxUserDataBytes is EC2's limit on user data before base64 encoding.
const MaxUserDataBytes = 16 * 1024

// launchTemplate is the id, name and tags of a claim's launch template.
type launchTemplate struct {
	ID, Name string
	Tags     map[string]string
}

// ensureLaunchTemplate returns the claim's launch template, creating it if it
// does not exist. An existing template is reused as it is: it was made for
// this claim by an earlier attempt.
func (p *Provider) ensureLaunchTemplate(ctx context.Context, req *LaunchRequest, imageID string) (launchTemplate, error) {
	name := LaunchTemplateName(req.ClusterName, req.NodeClaimName)
	logger := klog.FromContext(ctx).WithValues("launchTemplate", name)
	if lt, found, err := p.findLaunchTemplate(ctx, name); err != nil || found {
		if found {
			logger.V(4).Info("Reusing launch template", "id", lt.ID)
		}
		return lt, err
	}
	out, err := p.ec2.CreateLaunchTemplate(ctx, &awsec2.CreateLaunchTemplateInput{
		LaunchTemplateName: aws.String(name),
		LaunchTemplateData: launchTemplateData(req, imageID),
		TagSpecifications: []ec2types.TagSpecification{{
			ResourceType: ec2types.ResourceTypeLaunchTemplate,
			Tags:         toEC2Tags(launchTemplateTags(req)),
		}},
	})
	if apiErrorCode(err) == "InvalidLaunchTemplateName.AlreadyExistsException" {
		// Another attempt created it between our lookup and create.
		lt, found, ferr := p.findLaunchTemplate(ctx, name)
		if ferr == nil && !found {
			ferr = fmt.Errorf("launch template %s exists but cannot be described", name)
		}
		return lt, ferr
	}
	if err != nil {
		return launchTemplate{}, fmt.Errorf("creating launch template %s: %w", name, err)
	}
	logger.V(2).Info("Created launch template", "id", aws.ToString(out.LaunchTemplate.LaunchTemplateId))
	return launchTemplate{ID: aws.ToString(out.LaunchTemplate.LaunchTemplateId), Name: name}, nil
}

// LaunchTemplateTags returns the tags of a claim's launch template, and
// whether it exists. Launch reuses an existing one as it is, user data
// included, so whatever went into it (the bootstrap token) is what the
// claim's instance gets.
func (p *Provider) LaunchTemplateTags(ctx context.Context, clusterName, claimName string) (map[string]string, bool, error) {
	lt, found, err := p.findLaunchTemplate(ctx, LaunchTemplateName(clusterName, claimName))
	return lt.Tags, found, err
}

func (p *Provider) findLaunchTemplate(ctx context.Context, name string) (launchTemplate, bool, error) {
	out, err := p.ec2.DescribeLaunchTemplates(ctx, &awsec2.DescribeLaunchTemplatesInput{LaunchTemplateNames: []string{name}})
	if IsNotFound(err) {
		return launchTemplate{}, false, nil
	}
	if err != nil {
		return launchTemplate{}, false, fmt.Errorf("describing launch template %s: %w", name, err)
	}
	if len(out.LaunchTemplates) == 0 {
		return launchTemplate{}, false, nil
	}
	return launchTemplate{ID: aws.ToString(out.LaunchTemplates[0].LaunchTemplateId), Name: name, Tags: fromEC2Tags(out.LaunchTemplates[0].Tags)}, true, nil
}

// DeleteLaunchTemplate deletes the launch template of a claim. A template
// that does not exist is not an error.
func (p *Provider) DeleteLaunchTemplate(ctx context.Context, clusterName, claimName string) error {
	name := LaunchTemplateName(clusterName, claimName)
	// Look it up first: moto answers a delete of an unknown name with
	// MissingParameter rather than EC2's not-found error.
	lt, found, err := p.findLaunchTemplate(ctx, name)
	if err != nil || !found {
		return err
	}
	_, err = p.ec2.DeleteLaunchTemplate(ctx, &awsec2.DeleteLaunchTemplateInput{LaunchTemplateId: aws.String(lt.ID)})
	if err != nil && !IsNotFound(err) {
		return fmt.Errorf("deleting launch template %s: %w", name, err)
	}
	klog.FromContext(ctx).V(2).Info("Deleted launch template", "launchTemplate", name, "id", lt.ID)
	return nil
}

func launchTemplateData(req *LaunchRequest, imageID string) *ec2types.RequestLaunchTemplateData {
	tags := toEC2Tags(instanceTags(req))
	data := &ec2types.RequestLaunchTemplateData{
		ImageId:             aws.String(imageID),
		UserData:            aws.String(base64.StdEncoding.EncodeToString([]byte(req.UserData))),
		MetadataOptions:     metadataOptions(req.MetadataOptions),
		BlockDeviceMappings: blockDeviceMappings(req.BlockDeviceMappings),
		SecurityGroupIds:    req.SecurityGroupIDs,
		Monitoring:          &ec2types.LaunchTemplatesMonitoringRequest{Enabled: aws.Bool(req.DetailedMonitoring)},
		// The fleet tags instances and volumes too; tagging them from the
		// template as well covers launch paths that ignore the fleet's tags.
		TagSpecifications: []ec2types.LaunchTemplateTagSpecificationRequest{
			{ResourceType: ec2types.ResourceTypeInstance, Tags: tags},
			{ResourceType: ec2types.ResourceTypeVolume, Tags: tags},
		},
	}
	if req.InstanceProfile != "" {
		data.IamInstanceProfile = &ec2types.LaunchTemplateIamInstanceProfileSpecificationRequest{Name: aws.String(req.InstanceProfile)}
	}
	if n := req.Network; n != nil {
		// EC2 takes security groups either on the template or on its
		// interfaces, not both. The fleet's overrides give the subnet.
		data.SecurityGroupIds = nil
		nic := ec2types.LaunchTemplateInstanceNetworkInterfaceSpecificationRequest{
			DeviceIndex:              aws.Int32(0),
			Groups:                   req.SecurityGroupIDs,
			AssociatePublicIpAddress: n.AssociatePublicIPAddress,
			Ipv4PrefixCount:          n.IPv4PrefixCount,
		}
		if n.TCPEstablishedTimeout != nil || n.UDPStreamTimeout != nil || n.UDPTimeout != nil {
			nic.ConnectionTrackingSpecification = &ec2types.ConnectionTrackingSpecificationRequest{
				TcpEstablishedTimeout: n.TCPEstablishedTimeout, UdpStreamTimeout: n.UDPStreamTimeout, UdpTimeout: n.UDPTimeout,
			}
		}
		data.NetworkInterfaces = []ec2types.LaunchTemplateInstanceNetworkInterfaceSpecificationRequest{nic}
	}
	return data
}

// metadataOptions applies the defaults: IMDSv2 required, hop limit 1.
func metadataOptions(m *MetadataOptions) *ec2types.LaunchTemplateInstanceMetadataOptionsRequest {
	o := MetadataOptions{}
	if m != nil {
		o = *m
	}
	if o.HTTPEndpoint == "" {
		o.HTTPEndpoint = "enabled"
	}
	if o.HTTPProtocolIPv6 == "" {
		o.HTTPProtocolIPv6 = "disabled"
	}
	if o.HTTPPutResponseHopLimit == 0 {
		o.HTTPPutResponseHopLimit = 1
	}
	if o.HTTPTokens == "" {
		o.HTTPTokens = "required"
	}
	return &ec2types.LaunchTemplateInstanceMetadataOptionsRequest{
		HttpEndpoint:            ec2types.LaunchTemplateInstanceMetadataEndpointState(o.HTTPEndpoint),
		HttpProtocolIpv6:        ec2types.LaunchTemplateInstanceMetadataProtocolIpv6(o.HTTPProtocolIPv6),
		HttpPutResponseHopLimit: aws.Int32(o.HTTPPutResponseHopLimit),
		HttpTokens:              ec2types.LaunchTemplateHttpTokensState(o.HTTPTokens),
	}
}

func blockDeviceMappings(in []BlockDeviceMapping) []ec2types.LaunchTemplateBlockDeviceMappingRequest {
	out := make([]ec2types.LaunchTemplateBlockDeviceMappingRequest, 0, len(in))
	for _, b := range in {
		ebs := &ec2types.LaunchTemplateEbsBlockDeviceRequest{
			Encrypted:           b.Encrypted,
			DeleteOnTermination: b.DeleteOnTermination,
			Iops:                b.IOPS,
			Throughput:          b.Throughput,
			VolumeType:          ec2types.VolumeType(b.VolumeType),
			// Only for a volume made from a snapshot.
			VolumeInitializationRate: b.VolumeInitializationRate,
		}
		if b.VolumeSizeGiB > 0 {
			ebs.VolumeSize = aws.Int32(b.VolumeSizeGiB)
		}
		if b.KMSKeyID != "" {
			ebs.KmsKeyId = aws.String(b.KMSKeyID)
		}
		if b.SnapshotID != "" {
			ebs.SnapshotId = aws.String(b.SnapshotID)
		}
		out = append(out, ec2types.LaunchTemplateBlockDeviceMappingRequest{DeviceName: aws.String(b.DeviceName), Ebs: ebs})
	}
	return out
}

func validateRequest(req *LaunchRequest) error {
	var errs []error
	for _, f := range []struct{ name, value string }{
		{"clusterName", req.ClusterName}, {"nodePoolName", req.NodePoolName},
		{"nodeClaimName", req.NodeClaimName}, {"nodeClaimUID", req.NodeClaimUID},
	} {
		if f.value == "" {
			errs = append(errs, fmt.Errorf("%s: required", f.name))
		}
	}
	if req.CapacityType != CapacityTypeOnDemand && req.CapacityType != CapacityTypeSpot {
		errs = append(errs, fmt.Errorf("capacityType: must be %s or %s, got %q", CapacityTypeOnDemand, CapacityTypeSpot, req.CapacityType))
	}
	if len(req.InstanceTypes) == 0 {
		errs = append(errs, fmt.Errorf("instanceTypes: at least one is required"))
	}
	if len(req.Subnets) == 0 {
		errs = append(errs, fmt.Errorf("subnets: at least one is required"))
	}
	if len(req.AMIs) == 0 {
		errs = append(errs, fmt.Errorf("amis: at least one is required"))
	}
	if n := len(req.UserData); n > MaxUserDataBytes {
		errs = append(errs, fmt.Errorf("userData: %d bytes, EC2 accepts at most %d", n, MaxUserDataBytes))
	}
	for i, b := range req.BlockDeviceMappings {
		if b.DeviceName == "" {
			errs = append(errs, fmt.Errorf("blockDeviceMappings[%d].deviceName: required", i))
		}
	}
	return errors.Join(errs...)
}

// ClaimLaunchTemplate is a launch template made for a claim.
type ClaimLaunchTemplate struct {
	ID, Name string
	// NodeClaim is the claim it was made for (its karpenter.sh/nodeclaim tag).
	NodeClaim string
	Created   time.Time
}

// LaunchTemplates lists the launch templates made for the cluster's
// claims: those tagged karpenter.k8s.aws/cluster=<cluster> with a claim tag.
func (p *Provider) LaunchTemplates(ctx context.Context, clusterName string) ([]ClaimLaunchTemplate, error) {
	var out []ClaimLaunchTemplate
	pages := awsec2.NewDescribeLaunchTemplatesPaginator(p.ec2, &awsec2.DescribeLaunchTemplatesInput{Filters: []ec2types.Filter{
		filter("tag:"+TagManagedLaunchTemplate, clusterName),
		filter("tag-key", TagNodeClaim),
	}})
	err := eachPage(ctx, pages, func(page *awsec2.DescribeLaunchTemplatesOutput) {
		for _, lt := range page.LaunchTemplates {
			tags := fromEC2Tags(lt.Tags)
			if tags[TagNodeClaim] == "" {
				continue
			}
			out = append(out, ClaimLaunchTemplate{ID: aws.ToString(lt.LaunchTemplateId), Name: aws.ToString(lt.LaunchTemplateName),
				NodeClaim: tags[TagNodeClaim], Created: aws.ToTime(lt.CreateTime)})
		}
	})
	if err != nil {
		return nil, fmt.Errorf("describing launch templates: %w", err)
	}
	return out, nil
}
