package ec2

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

// ec2Arches are the EC2 architectures an alias resolves, with their
// Kubernetes names.
var ec2Arches = []struct{ ec2, kube string }{{"x86_64", ArchAMD64}, {"arm64", ArchARM64}}

// AMIs resolves AMI terms to available images, grouped by architecture and
// newest first within each. Images of architectures we do not run are dropped.
func (r *Resolver) AMIs(ctx context.Context, terms []AMISelectorTerm) ([]AMI, error) {
	if len(terms) == 0 {
		return nil, fmt.Errorf("amiSelectorTerms: at least one term is required")
	}
	for i, t := range terms {
		if t.Alias != "" && len(terms) > 1 {
			return nil, fmt.Errorf("amiSelectorTerms[%d]: an alias must be the only term", i)
		}
	}
	found := newMatches[AMI]("AMI")
	for i, term := range terms {
		name := fmt.Sprintf("amiSelectorTerms[%d] %s", i, describeAMITerm(term))
		input, note, err := r.imageQuery(ctx, term)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if input != nil {
			err := eachPage(ctx, awsec2.NewDescribeImagesPaginator(r.ec2, input), func(page *awsec2.DescribeImagesOutput) {
				for _, img := range page.Images {
					if ami, ok := toAMI(img); ok {
						found.add(ami.ID, ami)
					}
				}
			})
			if err != nil {
				return nil, fmt.Errorf("%s: describing images: %w", name, err)
			}
		}
		found.term(name + note)
	}
	return found.sorted(ctx, func(a, b AMI) bool {
		if a.Architecture != b.Architecture {
			return a.Architecture < b.Architecture
		}
		if !a.CreationDate.Equal(b.CreationDate) {
			return a.CreationDate.After(b.CreationDate)
		}
		return a.ID < b.ID
	})
}

// NewestPerArch picks the newest image of each architecture from AMIs' output.
func NewestPerArch(amis []AMI) map[string]string {
	out := map[string]string{}
	best := map[string]time.Time{}
	for _, a := range amis {
		if t, ok := best[a.Architecture]; !ok || a.CreationDate.After(t) {
			best[a.Architecture] = a.CreationDate
			out[a.Architecture] = a.ID
		}
	}
	return out
}

// imageQuery turns a term into a DescribeImages call. A nil input with no
// error means the term resolved to no image id; note then says why.
func (r *Resolver) imageQuery(ctx context.Context, t AMISelectorTerm) (*awsec2.DescribeImagesInput, string, error) {
	others := t.ID != "" || t.Name != "" || t.Owner != "" || len(t.Tags) > 0
	switch {
	case t.Alias != "":
		if others || t.SSMParameter != "" {
			return nil, "", fmt.Errorf("alias cannot be combined with other fields")
		}
		ids, tried, err := r.aliasImageIDs(ctx, t.Alias)
		if err != nil || len(ids) == 0 {
			return nil, fmt.Sprintf(" (no image id at SSM parameters %s)", strings.Join(tried, ", ")), err
		}
		return imagesByID(ids...), "", nil
	case t.SSMParameter != "":
		if others {
			return nil, "", fmt.Errorf("ssmParameter cannot be combined with other fields")
		}
		id, found, err := r.ssmParameter(ctx, t.SSMParameter)
		if err != nil || !found {
			return nil, " (SSM parameter not found)", err
		}
		return imagesByID(id), "", nil
	case t.ID != "":
		if t.Name != "" || t.Owner != "" || len(t.Tags) > 0 {
			return nil, "", fmt.Errorf("id cannot be combined with other fields")
		}
		return imagesByID(t.ID), "", nil
	case t.Name == "" && len(t.Tags) == 0:
		return nil, "", fmt.Errorf("set alias, id, name, tags or ssmParameter")
	}
	in := &awsec2.DescribeImagesInput{Filters: append(tagFilters(t.Tags), filter("state", "available"))}
	if t.Name != "" {
		in.Filters = append(in.Filters, filter("name", t.Name))
	}
	switch {
	case t.Owner != "":
		in.Owners = []string{t.Owner}
	case t.Name != "":
		// A bare name would match anyone's public images.
		in.Owners = []string{"self", "amazon"}
	}
	return in, "", nil
}

func imagesByID(ids ...string) *awsec2.DescribeImagesInput {
	return &awsec2.DescribeImagesInput{Filters: []ec2types.Filter{filter("image-id", ids...), filter("state", "available")}}
}

// aliasImageIDs reads the image id of each architecture from SSM. Missing
// parameters are skipped (a family may not publish every architecture).
func (r *Resolver) aliasImageIDs(ctx context.Context, alias string) (ids, tried []string, err error) {
	family, version, ok := strings.Cut(alias, "@")
	if !ok || family == "" || version == "" {
		return nil, nil, fmt.Errorf("alias %q: want <family>@<version>, for example al2023@latest", alias)
	}
	for _, a := range ec2Arches {
		path, err := r.opts.AliasParameter(strings.ToLower(family), version, a.ec2, r.opts.KubernetesVersion)
		if err != nil {
			return nil, nil, fmt.Errorf("alias %q: %w", alias, err)
		}
		tried = append(tried, path)
		id, found, err := r.ssmParameter(ctx, path)
		if err != nil {
			return nil, tried, err
		}
		if found {
			ids = append(ids, id)
		}
	}
	return ids, tried, nil
}

func (r *Resolver) ssmParameter(ctx context.Context, name string) (string, bool, error) {
	if r.ssm == nil {
		return "", false, fmt.Errorf("reading SSM parameter %s: no SSM client configured", name)
	}
	out, err := r.ssm.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name)})
	var nf *ssmtypes.ParameterNotFound
	if errors.As(err, &nf) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("reading SSM parameter %s: %w", name, err)
	}
	if out.Parameter == nil || aws.ToString(out.Parameter.Value) == "" {
		return "", false, nil
	}
	return aws.ToString(out.Parameter.Value), true, nil
}

func toAMI(img ec2types.Image) (AMI, bool) {
	var arch string
	switch img.Architecture {
	case ec2types.ArchitectureValuesX8664:
		arch = ArchAMD64
	case ec2types.ArchitectureValuesArm64:
		arch = ArchARM64
	default:
		return AMI{}, false
	}
	created, _ := time.Parse(time.RFC3339, aws.ToString(img.CreationDate))
	return AMI{ID: aws.ToString(img.ImageId), Name: aws.ToString(img.Name), Architecture: arch, CreationDate: created}, true
}

func describeAMITerm(t AMISelectorTerm) string {
	var parts []string
	for _, kv := range [][2]string{{"alias", t.Alias}, {"id", t.ID}, {"name", t.Name}, {"owner", t.Owner}, {"ssmParameter", t.SSMParameter}} {
		if kv[1] != "" {
			parts = append(parts, kv[0]+": "+kv[1])
		}
	}
	s := describeTerm("", "", "", "", t.Tags)
	if s != "{}" {
		parts = append(parts, strings.Trim(s, "{}"))
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// EKSAliasParameter maps an alias to the public SSM parameter AWS publishes
// for the EKS-optimized image of that family, as Karpenter does:
// al2023, al2 and bottlerocket, "latest" or a pinned version.
func EKSAliasParameter(family, version, arch, k8sVersion string) (string, error) {
	if k8sVersion == "" {
		return "", fmt.Errorf("the %s alias needs the cluster's Kubernetes version (ResolverOptions.KubernetesVersion)", family)
	}
	latest := version == "latest"
	switch family {
	case "al2023":
		if latest {
			return fmt.Sprintf("/aws/service/eks/optimized-ami/%s/amazon-linux-2023/%s/standard/recommended/image_id", k8sVersion, arch), nil
		}
		return fmt.Sprintf("/aws/service/eks/optimized-ami/%s/amazon-linux-2023/%s/standard/amazon-eks-node-al2023-%s-standard-%s-%s/image_id",
			k8sVersion, arch, arch, k8sVersion, version), nil
	case "al2":
		suffix := ""
		if arch == "arm64" {
			suffix = "-arm64"
		}
		if latest {
			return fmt.Sprintf("/aws/service/eks/optimized-ami/%s/amazon-linux-2%s/recommended/image_id", k8sVersion, suffix), nil
		}
		return fmt.Sprintf("/aws/service/eks/optimized-ami/%s/amazon-linux-2%s/amazon-eks%s-node-%s-%s/image_id",
			k8sVersion, suffix, suffix, k8sVersion, version), nil
	case "bottlerocket":
		return fmt.Sprintf("/aws/service/bottlerocket/aws-k8s-%s/%s/%s/image_id", k8sVersion, arch, strings.TrimPrefix(version, "v")), nil
	}
	return "", fmt.Errorf("unsupported alias family %q (al2023, al2, bottlerocket)", family)
}

// AmazonLinuxAliasParameter maps al2023@latest and al2@latest to the plain
// (not EKS-optimized) Amazon Linux images AWS publishes in SSM. It suits
// kubeadm nodes whose user data installs the Kubernetes packages itself.
func AmazonLinuxAliasParameter(family, version, arch, _ string) (string, error) {
	if version != "latest" {
		return "", fmt.Errorf("only %s@latest is published for plain Amazon Linux", family)
	}
	switch family {
	case "al2023":
		return "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-" + arch, nil
	case "al2":
		return "/aws/service/ami-amazon-linux-latest/amzn2-ami-kernel-5.10-hvm-" + arch + "-gp2", nil
	}
	return "", fmt.Errorf("unsupported alias family %q (al2023, al2)", family)
}
