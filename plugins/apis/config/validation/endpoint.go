package validation

import (
	"net"
	"net/url"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// validateEndpoint accepts what `kubeadm join` accepts as its API server
// argument (host:port), optionally written as an https:// URL.
func validateEndpoint(p *field.Path, endpoint string) field.ErrorList {
	hostPort := endpoint
	if strings.Contains(endpoint, "://") {
		u, err := url.Parse(endpoint)
		switch {
		case err != nil:
			return field.ErrorList{field.Invalid(p, endpoint, err.Error())}
		case u.Scheme != "https":
			return field.ErrorList{field.Invalid(p, endpoint, "scheme must be https")}
		case u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "":
			return field.ErrorList{field.Invalid(p, endpoint, "must be https://host:port with no user, path or query")}
		}
		hostPort = u.Host
	}
	host, port, err := net.SplitHostPort(hostPort)
	if err != nil {
		return field.ErrorList{field.Invalid(p, endpoint, "must be host:port or https://host:port")}
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return field.ErrorList{field.Invalid(p, endpoint, "port must be a number in 1..65535")}
	}
	if net.ParseIP(host) == nil && len(validation.IsDNS1123Subdomain(strings.ToLower(host))) > 0 {
		return field.ErrorList{field.Invalid(p, endpoint, "host must be an IP address or a DNS name")}
	}
	return nil
}
