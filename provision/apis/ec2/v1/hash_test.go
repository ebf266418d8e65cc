package v1

import (
	"testing"

	"k8s.io/utils/ptr"
)

func TestHash(t *testing.T) {
	base := func() *EC2NodeClass {
		return &EC2NodeClass{Spec: EC2NodeClassSpec{
			SubnetSelectorTerms:        []SubnetSelectorTerm{{Tags: map[string]string{"karpenter.sh/discovery": "dev"}}},
			SecurityGroupSelectorTerms: []SecurityGroupSelectorTerm{{Tags: map[string]string{"karpenter.sh/discovery": "dev"}}},
			AMISelectorTerms:           []AMISelectorTerm{{ID: "ami-1"}},
			UserData:                   ptr.To("#!/bin/bash\necho hi\n"),
			Tags:                       map[string]string{"team": "scan", "env": "dev"},
			Role:                       "nodes",
		}}
	}
	h := base().Hash()
	if h == "" {
		t.Fatal("empty hash")
	}
	same := base()
	same.Spec.SubnetSelectorTerms = []SubnetSelectorTerm{{ID: "subnet-1"}}
	same.Spec.SecurityGroupSelectorTerms = nil
	same.Spec.AMISelectorTerms = []AMISelectorTerm{{Alias: "al2023@latest"}}
	same.Status.Subnets = []Subnet{{ID: "subnet-2"}}
	if got := same.Hash(); got != h {
		t.Errorf("selector terms or status changed the hash: %s != %s", got, h)
	}
	for name, change := range map[string]func(*EC2NodeClass){
		"userData": func(c *EC2NodeClass) { c.Spec.UserData = ptr.To("#!/bin/bash\necho bye\n") },
		"tags":     func(c *EC2NodeClass) { c.Spec.Tags["team"] = "other" },
		"role":     func(c *EC2NodeClass) { c.Spec.Role = "other" },
		"metadata": func(c *EC2NodeClass) { c.Spec.MetadataOptions = &MetadataOptions{HTTPTokens: ptr.To("optional")} },
	} {
		c := base()
		change(c)
		if c.Hash() == h {
			t.Errorf("%s: hash did not change", name)
		}
	}
}
