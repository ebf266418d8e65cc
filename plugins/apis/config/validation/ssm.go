package validation

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// SSM Parameter Store naming rules (AWS "Working with parameter hierarchies"
// and PutParameter): checked here so a typo fails at startup, not at the
// first node launch.
const (
	maxSSMNameLength = 2048
	maxSSMDepth      = 15
)

func validateSSMName(p *field.Path, name string) field.ErrorList {
	if len(name) > maxSSMNameLength {
		return field.ErrorList{field.TooLong(p, name, maxSSMNameLength)}
	}
	for _, r := range name {
		if !isSSMNameRune(r) {
			return field.ErrorList{field.Invalid(p, name, fmt.Sprintf("invalid character %q: SSM parameter names use only a-z, A-Z, 0-9, '_', '.', '-' and '/'", r))}
		}
	}
	if !strings.Contains(name, "/") {
		return nil
	}
	if !strings.HasPrefix(name, "/") {
		return field.ErrorList{field.Invalid(p, name, "a hierarchical SSM parameter name must start with '/'")}
	}
	levels := strings.Split(name[1:], "/")
	for _, l := range levels {
		if l == "" {
			return field.ErrorList{field.Invalid(p, name, "SSM parameter name has an empty path segment")}
		}
	}
	if len(levels) > maxSSMDepth {
		return field.ErrorList{field.Invalid(p, name, fmt.Sprintf("SSM parameter hierarchies are at most %d levels deep", maxSSMDepth))}
	}
	return nil
}

func isSSMNameRune(r rune) bool {
	switch {
	case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9':
		return true
	}
	return strings.ContainsRune("_.-/", r)
}
