// Package validation checks ProvisionerArgs after defaulting, so the
// scheduler refuses to start on settings the controllers cannot use.
package validation

import (
	"fmt"
	"math"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/fleet-scheduler/fleet-scheduler/plugins/apis/config"
)

// Bounds on the lifetime of minted bootstrap tokens: long enough for an
// instance to boot and join, short enough that a leaked token soon dies.
// A token is in the instance's user data, readable there for as long as
// the instance lives; an hour bounds what a copy is worth (it is deleted
// once the node joins anyway). provision/bootstrap enforces the same.
const (
	MinTokenTTL = time.Minute
	MaxTokenTTL = time.Hour
	// maxUnregisteredNodesToPause bounds the nodes a NodePool may launch
	// in a row that never join: each costs registrationTTL of an instance.
	maxUnregisteredNodesToPause = 100
)

// ValidateProvisionerArgs returns the problems with args as one error whose
// text names each bad field under path, or nil.
func ValidateProvisionerArgs(path *field.Path, args *config.ProvisionerArgs) error {
	return ProvisionerArgsErrors(path, args).ToAggregate()
}

// ProvisionerArgsErrors lists the problems with args, one per bad field.
func ProvisionerArgsErrors(path *field.Path, args *config.ProvisionerArgs) field.ErrorList {
	var errs field.ErrorList
	errs = append(errs, validateClusterName(path.Child("clusterName"), args.ClusterName)...)
	if args.Region != "" {
		errs = append(errs, dns1123Label(path.Child("region"), args.Region)...)
	}
	if args.ClusterEndpoint != "" {
		errs = append(errs, validateEndpoint(path.Child("clusterEndpoint"), args.ClusterEndpoint)...)
	}
	errs = append(errs, validateBootstrap(path.Child("bootstrap"), &args.Bootstrap)...)

	idle, idlePath := args.BatchIdleDuration.Duration, path.Child("batchIdleDuration")
	errs = append(errs, positive(idlePath, idle)...)
	maxPath := path.Child("batchMaxDuration")
	if batchMax := args.BatchMaxDuration.Duration; batchMax < idle {
		errs = append(errs, field.Invalid(maxPath, batchMax.String(), fmt.Sprintf("must be >= batchIdleDuration (%s)", idle)))
	} else {
		errs = append(errs, positive(maxPath, batchMax)...)
	}
	errs = append(errs, positive(path.Child("registrationTTL"), args.RegistrationTTL.Duration)...)
	errs = append(errs, positive(path.Child("disruptionInterval"), args.DisruptionInterval.Duration)...)
	if args.InterruptionQueue != "" {
		errs = append(errs, validateSQSQueueName(path.Child("interruptionQueue"), args.InterruptionQueue)...)
	}

	errs = append(errs, validateAWSCallTimeouts(path.Child("awsCallTimeouts"), &args.AWSCallTimeouts)...)
	if n := args.UnregisteredNodesToPause; n < 1 || n > maxUnregisteredNodesToPause {
		errs = append(errs, field.Invalid(path.Child("unregisteredNodesToPause"), n, fmt.Sprintf("must be between 1 and %d", maxUnregisteredNodesToPause)))
	}

	if p := args.VMMemoryOverheadPercent; math.IsNaN(p) || p < 0 || p >= 1 {
		errs = append(errs, field.Invalid(path.Child("vmMemoryOverheadPercent"), p, "must be in [0, 1)"))
	}
	return errs
}

func validateClusterName(p *field.Path, name string) field.ErrorList {
	if name == "" {
		return field.ErrorList{field.Required(p, "names the cluster in EC2 tags and resource names")}
	}
	return dns1123Label(p, name)
}

func dns1123Label(p *field.Path, v string) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range validation.IsDNS1123Label(v) {
		errs = append(errs, field.Invalid(p, v, msg))
	}
	return errs
}

func validateBootstrap(p *field.Path, b *config.BootstrapArgs) field.ErrorList {
	var errs field.ErrorList
	tokenPath, hashPath := p.Child("tokenSSMParameter"), p.Child("caCertHashSSMParameter")
	switch {
	case b.TokenSSMParameter == "" && b.CACertHashSSMParameter != "":
		errs = append(errs, field.Required(tokenPath, "set both SSM parameters or neither"))
	case b.TokenSSMParameter != "" && b.CACertHashSSMParameter == "":
		errs = append(errs, field.Required(hashPath, "set both SSM parameters or neither"))
	}
	if b.TokenSSMParameter != "" {
		errs = append(errs, validateSSMName(tokenPath, b.TokenSSMParameter)...)
	}
	if b.CACertHashSSMParameter != "" {
		errs = append(errs, validateSSMName(hashPath, b.CACertHashSSMParameter)...)
	}
	if ttl := b.TokenTTL.Duration; ttl < MinTokenTTL || ttl > MaxTokenTTL {
		errs = append(errs, field.Invalid(p.Child("tokenTTL"), ttl.String(), fmt.Sprintf("must be between %s and %s", MinTokenTTL, MaxTokenTTL)))
	}
	return errs
}

func positive(p *field.Path, d time.Duration) field.ErrorList {
	if d <= 0 {
		return field.ErrorList{field.Invalid(p, d.String(), "must be > 0")}
	}
	return nil
}
