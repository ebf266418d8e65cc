package ec2

import (
	"fmt"
	"strings"
)

const providerIDScheme = "aws://"

// FormatProviderID returns aws:///<zone>/<instance-id>, the form the AWS
// cloud provider and Karpenter put in a node's spec.providerID.
func FormatProviderID(zone, instanceID string) string {
	return fmt.Sprintf("aws:///%s/%s", zone, instanceID)
}

// ParseProviderID reads aws:///<zone>/<instance-id> (and the zone-less
// aws:///<instance-id>) and returns the zone ("" if absent) and instance id.
func ParseProviderID(providerID string) (zone, instanceID string, err error) {
	rest, ok := strings.CutPrefix(providerID, providerIDScheme)
	if !ok {
		return "", "", fmt.Errorf("provider id %q: want scheme %q", providerID, providerIDScheme)
	}
	parts := strings.Split(strings.TrimPrefix(rest, "/"), "/")
	switch len(parts) {
	case 1:
		instanceID = parts[0]
	case 2:
		zone, instanceID = parts[0], parts[1]
		if zone == "" {
			return "", "", fmt.Errorf("provider id %q: empty zone", providerID)
		}
	default:
		return "", "", fmt.Errorf("provider id %q: want aws:///<zone>/<instance-id>", providerID)
	}
	if !strings.HasPrefix(instanceID, "i-") || len(instanceID) < 3 {
		return "", "", fmt.Errorf("provider id %q: %q is not an instance id", providerID, instanceID)
	}
	return zone, instanceID, nil
}
