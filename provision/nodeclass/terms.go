package nodeclass

import (
	ec2v1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/ec2/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/ec2"
)

func subnetTerms(in []ec2v1.SubnetSelectorTerm) []ec2.SubnetSelectorTerm {
	out := make([]ec2.SubnetSelectorTerm, 0, len(in))
	for _, t := range in {
		out = append(out, ec2.SubnetSelectorTerm{ID: t.ID, Tags: t.Tags})
	}
	return out
}

func securityGroupTerms(in []ec2v1.SecurityGroupSelectorTerm) []ec2.SecurityGroupSelectorTerm {
	out := make([]ec2.SecurityGroupSelectorTerm, 0, len(in))
	for _, t := range in {
		out = append(out, ec2.SecurityGroupSelectorTerm{ID: t.ID, Name: t.Name, Tags: t.Tags})
	}
	return out
}

func amiTerms(in []ec2v1.AMISelectorTerm) []ec2.AMISelectorTerm {
	out := make([]ec2.AMISelectorTerm, 0, len(in))
	for _, t := range in {
		out = append(out, ec2.AMISelectorTerm{Alias: t.Alias, ID: t.ID, Name: t.Name, Owner: t.Owner, Tags: t.Tags, SSMParameter: t.SSMParameter})
	}
	return out
}
