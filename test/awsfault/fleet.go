package awsfault

import (
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Override is one launch-template override of a CreateFleet request.
type Override struct {
	InstanceType     string
	SubnetID         string
	AvailabilityZone string
	ImageID          string
}

// FleetErrors intercepts the first times CreateFleet calls (0: all). The
// overrides for which fail returns true are taken out of the request and
// reported in the answer's Errors list with code, the way EC2 Fleet reports
// overrides it could not fulfil; the rest go to the target, which launches
// from them. When no override is left the answer carries only the errors.
func FleetErrors(times int, code string, fail func(Override) bool) *Rule {
	return FleetErrorsBy(times, func(o Override, _ string) string {
		if fail(o) {
			return code
		}
		return ""
	})
}

// FleetErrorsBy is FleetErrors with the error code chosen per override
// and the request's capacity type ("on-demand" or "spot"): "" keeps it.
func FleetErrorsBy(times int, codeFor func(o Override, capacityType string) string) *Rule {
	return &Rule{Action: "CreateFleet", Times: times, handle: func(w http.ResponseWriter, r *http.Request, form url.Values, forward http.Handler) {
		configs, rest := splitConfigs(form)
		lifecycle := form.Get("TargetCapacitySpecification.DefaultTargetCapacityType")
		var items strings.Builder
		kept := 0
		for _, c := range configs {
			var keep []map[string]string
			for _, o := range c.overrides {
				ov := Override{InstanceType: o["InstanceType"], SubnetID: o["SubnetId"], AvailabilityZone: o["AvailabilityZone"], ImageID: o["ImageId"]}
				if code := codeFor(ov, lifecycle); code != "" {
					items.WriteString(errorItem(c.spec, ov, lifecycle, code))
					continue
				}
				keep = append(keep, o)
			}
			c.overrides = keep
			kept += len(keep)
		}
		if kept == 0 {
			w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
			fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>
<CreateFleetResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>%s</requestId><fleetId>fleet-%s</fleetId><errorSet>%s</errorSet><fleetInstanceSet/></CreateFleetResponse>`,
				requestID(), strings.ReplaceAll(requestID(), "-", "")[:24], items.String())
			return
		}
		setBody(r, []byte(joinConfigs(configs, rest).Encode()))
		forward.ServeHTTP(w, withInject(r, items.String()))
	}}
}

// SerialFleetErrors is FleetErrorsBy for faults that depend on what is
// already launched (a quota): CreateFleet calls are handled one at a
// time, each until the target has answered, and perRequest makes each
// call's codeFor once the calls before it have launched.
func SerialFleetErrors(perRequest func() func(o Override, capacityType string) string) *Rule {
	var mu sync.Mutex
	return &Rule{Action: "CreateFleet", handle: func(w http.ResponseWriter, r *http.Request, form url.Values, forward http.Handler) {
		mu.Lock()
		defer mu.Unlock()
		FleetErrorsBy(0, perRequest()).handle(w, r, form, forward)
	}}
}

// FailTypes fails overrides of the named instance types.
func FailTypes(types ...string) func(Override) bool {
	return func(o Override) bool {
		for _, t := range types {
			if o.InstanceType == t {
				return true
			}
		}
		return false
	}
}

// FailAll fails every override.
func FailAll(Override) bool { return true }

type ltConfig struct {
	spec      map[string]string   // LaunchTemplateSpecification.* and other per-config fields
	overrides []map[string]string // field -> value, in request order
}

// splitConfigs takes the LaunchTemplateConfigs.N.* fields out of an EC2
// query form (the SDK's serialization) and returns them with the rest.
func splitConfigs(form url.Values) ([]*ltConfig, url.Values) {
	rest := url.Values{}
	byIndex := map[int]*ltConfig{}
	overrideIdx := map[int]map[int]map[string]string{}
	for key, vals := range form {
		after, ok := strings.CutPrefix(key, "LaunchTemplateConfigs.")
		if !ok {
			rest[key] = vals
			continue
		}
		nStr, field, _ := strings.Cut(after, ".")
		n, _ := strconv.Atoi(nStr)
		if byIndex[n] == nil {
			byIndex[n] = &ltConfig{spec: map[string]string{}}
			overrideIdx[n] = map[int]map[string]string{}
		}
		if o, ok := strings.CutPrefix(field, "Overrides."); ok {
			mStr, f, _ := strings.Cut(o, ".")
			m, _ := strconv.Atoi(mStr)
			if overrideIdx[n][m] == nil {
				overrideIdx[n][m] = map[string]string{}
			}
			overrideIdx[n][m][f] = vals[0]
			continue
		}
		byIndex[n].spec[field] = vals[0]
	}
	var out []*ltConfig
	for _, n := range slices.Sorted(maps.Keys(byIndex)) {
		c := byIndex[n]
		for _, m := range slices.Sorted(maps.Keys(overrideIdx[n])) {
			c.overrides = append(c.overrides, overrideIdx[n][m])
		}
		out = append(out, c)
	}
	return out, rest
}

// joinConfigs renumbers the configs that still have overrides from 1.
func joinConfigs(configs []*ltConfig, rest url.Values) url.Values {
	form := url.Values{}
	for k, v := range rest {
		form[k] = v
	}
	n := 0
	for _, c := range configs {
		if len(c.overrides) == 0 {
			continue
		}
		n++
		for k, v := range c.spec {
			form.Set(fmt.Sprintf("LaunchTemplateConfigs.%d.%s", n, k), v)
		}
		for m, o := range c.overrides {
			for k, v := range o {
				form.Set(fmt.Sprintf("LaunchTemplateConfigs.%d.Overrides.%d.%s", n, m+1, k), v)
			}
		}
	}
	return form
}

func errorItem(spec map[string]string, o Override, lifecycle, code string) string {
	var b strings.Builder
	b.WriteString("<item><launchTemplateAndOverrides><launchTemplateSpecification>")
	for _, f := range [][2]string{{"launchTemplateId", "LaunchTemplateId"}, {"launchTemplateName", "LaunchTemplateName"}, {"version", "Version"}} {
		if v := spec["LaunchTemplateSpecification."+f[1]]; v != "" {
			fmt.Fprintf(&b, "<%s>%s</%s>", f[0], xmlEscape(v), f[0])
		}
	}
	b.WriteString("</launchTemplateSpecification><overrides>")
	for _, f := range [][2]string{{"instanceType", o.InstanceType}, {"subnetId", o.SubnetID}, {"availabilityZone", o.AvailabilityZone}, {"imageId", o.ImageID}} {
		if f[1] != "" {
			fmt.Fprintf(&b, "<%s>%s</%s>", f[0], xmlEscape(f[1]), f[0])
		}
	}
	b.WriteString("</overrides></launchTemplateAndOverrides>")
	if lifecycle != "" {
		fmt.Fprintf(&b, "<lifecycle>%s</lifecycle>", xmlEscape(lifecycle))
	}
	fmt.Fprintf(&b, "<errorCode>%s</errorCode><errorMessage>%s</errorMessage></item>", xmlEscape(code), xmlEscape(fleetMessage(code, o)))
	return b.String()
}

// fleetMessage is the message EC2 Fleet sends with code.
func fleetMessage(code string, o Override) string {
	switch code {
	case "InsufficientInstanceCapacity":
		return fmt.Sprintf("We currently do not have sufficient %s capacity in the Availability Zone you requested (%s). "+
			"Our system will be working on provisioning additional capacity. You can currently get %s capacity by not "+
			"specifying an Availability Zone in your request or choosing a different Availability Zone.",
			o.InstanceType, o.AvailabilityZone, o.InstanceType)
	case "UnfulfillableCapacity":
		return "Unable to fulfill capacity due to your request configuration. Please adjust your request and try again."
	case "MaxSpotInstanceCountExceeded":
		return "Max spot instance count exceeded"
	case "VcpuLimitExceeded":
		return "You have requested more vCPU capacity than your current vCPU limit of 32 allows for the instance bucket " +
			"that the specified instance type belongs to. Please visit http://aws.amazon.com/contact-us/ec2-request to " +
			"request an adjustment to this limit."
	}
	return code
}
