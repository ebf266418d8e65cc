package nodeclaimtest

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Proxy sits between an operator and moto and misbehaves on CreateFleet
// when told to; everything else passes through. It answers the way EC2
// does (the XML of provision/ec2/internal/faultproxy, which this package
// cannot import).
type Proxy struct {
	URL    string
	target *url.URL
	rp     *httputil.ReverseProxy

	mu    sync.Mutex
	fleet fleetMode
	code  string
	hide  bool
	calls map[string]int
	// launched receives the answer of every CreateFleet in hang mode,
	// once moto has launched, and "" for each held by HoldFleet.
	launched chan string
	release  chan struct{}
}

type fleetMode int

const (
	fleetPass fleetMode = iota
	fleetFail
	fleetHang
	fleetHold
)

// StartProxy starts a proxy in front of target and stops it when the test ends.
func StartProxy(t *testing.T, target string) *Proxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{target: u, rp: httputil.NewSingleHostReverseProxy(u), calls: map[string]int{}, launched: make(chan string, 16)}
	srv := httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

// FailFleet makes every CreateFleet report each of its overrides failed
// with the EC2 Fleet error code (InsufficientInstanceCapacity, ...) and
// launch nothing.
func (p *Proxy) FailFleet(code string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fleet, p.code = fleetFail, code
}

// HangFleet makes every CreateFleet reach moto (which launches) and then
// never answer the caller until it gives up: a process that dies between
// CreateFleet and writing what it launched. Launched reports each such
// launch's raw answer.
func (p *Proxy) HangFleet() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fleet = fleetHang
}

// HoldFleet holds every CreateFleet back until release is called, then
// lets it launch: a launch request still on its way, or an instance EC2
// does not list yet. Launched reports each held request when it arrives.
func (p *Proxy) HoldFleet() (release func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fleet = fleetHold
	ch := make(chan struct{})
	p.release = ch
	var once sync.Once
	return func() { once.Do(func() { close(ch) }) }
}

// HideTagged makes DescribeInstances calls that filter by tag find nothing,
// as EC2's eventually consistent listing does for an instance launched a
// moment ago. Calls by instance id still see it.
func (p *Proxy) HideTagged(hide bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.hide = hide
}

// Pass lets CreateFleet through again.
func (p *Proxy) Pass() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fleet = fleetPass
}

// Launched receives the answer of each CreateFleet that HangFleet keeps
// from its caller (moto launched), and "" when one HoldFleet holds arrives.
func (p *Proxy) Launched() <-chan string { return p.launched }

// Calls is how many requests for the action the proxy has seen.
func (p *Proxy) Calls(action string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls[action]
}

func (p *Proxy) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	setBody(r, body)
	form, _ := url.ParseQuery(string(body))
	action := form.Get("Action")
	if target := r.Header.Get("X-Amz-Target"); target != "" {
		action = target[strings.LastIndex(target, ".")+1:]
	}
	p.mu.Lock()
	p.calls[action]++
	mode, code, release, hide := p.fleet, p.code, p.release, p.hide
	p.mu.Unlock()
	if action == "DescribeInstances" && hide && filtersByTag(form) {
		w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
		fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?>
<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>00000000-0000-4000-8000-000000000002</requestId><reservationSet/></DescribeInstancesResponse>`)
		return
	}
	if action != "CreateFleet" {
		p.rp.ServeHTTP(w, r)
		return
	}
	switch mode {
	case fleetFail:
		w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>
<CreateFleetResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>00000000-0000-4000-8000-000000000001</requestId><fleetId>fleet-00000000000000000000000a</fleetId><errorSet>%s</errorSet><fleetInstanceSet/></CreateFleetResponse>`,
			fleetErrorItems(form, code))
	case fleetHang:
		rec := httptest.NewRecorder()
		p.rp.ServeHTTP(rec, r)
		p.launched <- rec.Body.String()
		<-r.Context().Done() // the caller gave up (or died)
	case fleetHold:
		p.launched <- ""
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		p.rp.ServeHTTP(w, r)
	default:
		p.rp.ServeHTTP(w, r)
	}
}

func filtersByTag(form url.Values) bool {
	for key, vals := range form {
		if strings.HasPrefix(key, "Filter.") && strings.HasSuffix(key, ".Name") && len(vals) > 0 && strings.HasPrefix(vals[0], "tag") {
			return true
		}
	}
	return false
}

func setBody(r *http.Request, body []byte) {
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	r.Header.Set("Content-Length", strconv.Itoa(len(body)))
}

// fleetErrorItems is one errorSet item per override of the request, the
// way EC2 Fleet reports overrides it could not fulfil.
func fleetErrorItems(form url.Values, code string) string {
	lifecycle := form.Get("TargetCapacitySpecification.DefaultTargetCapacityType")
	overrides := map[string]map[string]string{} // "<config>.<override>" -> field -> value
	for key, vals := range form {
		after, ok := strings.CutPrefix(key, "LaunchTemplateConfigs.")
		if !ok {
			continue
		}
		n, rest, _ := strings.Cut(after, ".")
		o, ok := strings.CutPrefix(rest, "Overrides.")
		if !ok {
			continue
		}
		m, field, _ := strings.Cut(o, ".")
		id := n + "." + m
		if overrides[id] == nil {
			overrides[id] = map[string]string{}
		}
		overrides[id][field] = vals[0]
	}
	ids := make([]string, 0, len(overrides))
	for id := range overrides {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var b strings.Builder
	for _, id := range ids {
		o := overrides[id]
		b.WriteString("<item><launchTemplateAndOverrides><overrides>")
		for _, f := range [][2]string{{"instanceType", "InstanceType"}, {"subnetId", "SubnetId"}, {"availabilityZone", "AvailabilityZone"}, {"imageId", "ImageId"}} {
			if v := o[f[1]]; v != "" {
				fmt.Fprintf(&b, "<%s>%s</%s>", f[0], v, f[0])
			}
		}
		b.WriteString("</overrides></launchTemplateAndOverrides>")
		if lifecycle != "" {
			fmt.Fprintf(&b, "<lifecycle>%s</lifecycle>", lifecycle)
		}
		fmt.Fprintf(&b, "<errorCode>%s</errorCode><errorMessage>We currently do not have sufficient %s capacity in the Availability Zone you requested (%s).</errorMessage></item>",
			code, o["InstanceType"], o["AvailabilityZone"])
	}
	return b.String()
}
