// Package awsfault is an HTTP proxy for tests that sits in front of
// moto_server and answers chosen AWS actions the way AWS does when things go
// wrong: API errors in EC2's XML error format (throttling, quotas),
// CreateFleet answers whose Errors list reports overrides that had no
// capacity, requests held back or never answered (a call still on its way,
// a caller that died mid-call), and tag-filtered DescribeInstances that do
// not list fresh instances yet (EC2's eventual consistency). Everything else
// is forwarded unchanged.
//
// Faults are rules (APIError, Throttle, FleetErrors, Hold, Hang, Blackhole,
// HideTagged) added to and removed from a running Proxy.
package awsfault

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Proxy forwards to a target and applies rules to matching requests.
type Proxy struct {
	URL    string
	server *httptest.Server
	rp     *httputil.ReverseProxy

	mu    sync.Mutex
	rules []*Rule
	calls map[string]int
}

// Rule intercepts requests for one action.
type Rule struct {
	Action string
	// Times is how many matching requests the rule intercepts; 0 means all.
	Times int
	hits  int
	// match narrows the requests for Action the rule applies to; nil: all.
	match func(form url.Values) bool
	// handle answers the request itself or hands it, possibly rewritten,
	// to forward.
	handle func(w http.ResponseWriter, r *http.Request, form url.Values, forward http.Handler)
}

type injectKey struct{}

// New starts a proxy in front of target (for example moto's endpoint).
func New(target string) (*Proxy, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	p := &Proxy{calls: map[string]int{}}
	p.rp = httputil.NewSingleHostReverseProxy(u)
	p.rp.ModifyResponse = injectFleetErrors
	p.rp.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
		if r.Context().Err() != nil {
			return // the caller gave up or died (a crash test's kill): nobody to answer, nothing to log
		}
		log.Printf("awsfault: forwarding %s: %v", r.URL.Path, err)
		w.WriteHeader(http.StatusBadGateway)
	}
	p.server = httptest.NewServer(http.HandlerFunc(p.serve))
	p.URL = p.server.URL
	return p, nil
}

// Start starts a proxy in front of target for one test and closes it when
// the test ends.
func Start(t testing.TB, target string) *Proxy {
	t.Helper()
	p, err := New(target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// Close stops the proxy.
func (p *Proxy) Close() { p.server.Close() }

// Add installs rules; the first rule that matches a request and still has
// hits left applies.
func (p *Proxy) Add(rules ...*Rule) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules = append(p.rules, rules...)
}

// Remove uninstalls rules; the call counts stay.
func (p *Proxy) Remove(rules ...*Rule) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules = slices.DeleteFunc(p.rules, func(r *Rule) bool { return slices.Contains(rules, r) })
}

// Clear removes every rule and resets the call counts.
func (p *Proxy) Clear() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules, p.calls = nil, map[string]int{}
}

// Calls is how many requests for action the proxy has seen.
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
		// JSON protocols (SSM) name the action in a header.
		action = target[strings.LastIndex(target, ".")+1:]
	}
	p.mu.Lock()
	p.calls[action]++
	var rule *Rule
	for _, candidate := range p.rules {
		if candidate.Action == action && (candidate.match == nil || candidate.match(form)) &&
			(candidate.Times == 0 || candidate.hits < candidate.Times) {
			candidate.hits++
			rule = candidate
			break
		}
	}
	p.mu.Unlock()
	if rule == nil {
		p.rp.ServeHTTP(w, r)
		return
	}
	rule.handle(w, r, form, p.rp)
}

func setBody(r *http.Request, body []byte) {
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	r.Header.Set("Content-Length", strconv.Itoa(len(body)))
}

// APIError answers action with an EC2 error document, as AWS does for
// errors of the call itself.
func APIError(action string, times, status int, code, message string) *Rule {
	return &Rule{Action: action, Times: times, handle: func(w http.ResponseWriter, _ *http.Request, _ url.Values, _ http.Handler) {
		w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
		w.WriteHeader(status)
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>
<Response><Errors><Error><Code>%s</Code><Message>%s</Message></Error></Errors><RequestID>%s</RequestID></Response>`,
			xmlEscape(code), xmlEscape(message), requestID())
	}}
}

// Throttle answers the first times calls of action with EC2's
// RequestLimitExceeded (HTTP 503), which SDK retryers treat as throttling.
func Throttle(action string, times int) *Rule {
	return APIError(action, times, http.StatusServiceUnavailable, "RequestLimitExceeded", "Request limit exceeded.")
}

// Hold holds the first times requests for action (0: all) back until
// release is closed, then forwards them: a request still on its way, or
// an instance EC2 does not list yet. A request whose caller gives up while
// held is dropped. When arrived is not nil each held request's body is
// sent on it as the request arrives.
func Hold(action string, times int, release <-chan struct{}, arrived chan<- string) *Rule {
	return &Rule{Action: action, Times: times, handle: func(w http.ResponseWriter, r *http.Request, form url.Values, forward http.Handler) {
		if !send(r.Context(), arrived, form.Encode()) {
			return
		}
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		forward.ServeHTTP(w, r)
	}}
}

// Hang forwards the first times requests for action (0: all), so the target
// acts on them, and never answers the caller, who waits until it gives up:
// a process that dies between a call and recording what it did. When
// answers is not nil the target's answer to each is sent on it.
func Hang(action string, times int, answers chan<- string) *Rule {
	return &Rule{Action: action, Times: times, handle: func(_ http.ResponseWriter, r *http.Request, _ url.Values, forward http.Handler) {
		rec := httptest.NewRecorder()
		forward.ServeHTTP(rec, r)
		send(r.Context(), answers, rec.Body.String())
		<-r.Context().Done() // the caller gave up (or died)
	}}
}

// Blackhole accepts the first times requests for action (0: all) and
// neither forwards nor answers them until the caller gives up: an endpoint
// that hangs before acting. When arrived is not nil each request's body is
// sent on it as the request arrives.
func Blackhole(action string, times int, arrived chan<- string) *Rule {
	return &Rule{Action: action, Times: times, handle: func(_ http.ResponseWriter, r *http.Request, form url.Values, _ http.Handler) {
		send(r.Context(), arrived, form.Encode())
		<-r.Context().Done()
	}}
}

// HideTagged answers the first times DescribeInstances calls (0: all) that
// filter by tag with no instances, as EC2's eventually consistent listing
// does for an instance launched a moment ago. Calls by instance id, and
// calls without a tag filter, still reach the target.
func HideTagged(times int) *Rule {
	return &Rule{Action: "DescribeInstances", Times: times, match: filtersByTag, handle: func(w http.ResponseWriter, _ *http.Request, _ url.Values, _ http.Handler) {
		w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>
<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>%s</requestId><reservationSet/></DescribeInstancesResponse>`,
			requestID())
	}}
}

func filtersByTag(form url.Values) bool {
	for key, vals := range form {
		if strings.HasPrefix(key, "Filter.") && strings.HasSuffix(key, ".Name") && len(vals) > 0 && strings.HasPrefix(vals[0], "tag") {
			return true
		}
	}
	return false
}

// send sends v on ch unless ch is nil; it reports false when ctx ended first.
func send(ctx context.Context, ch chan<- string, v string) bool {
	if ch == nil {
		return true
	}
	select {
	case ch <- v:
		return true
	case <-ctx.Done():
		return false
	}
}

var requestCounter struct {
	sync.Mutex
	n int
}

func requestID() string {
	requestCounter.Lock()
	defer requestCounter.Unlock()
	requestCounter.n++
	return fmt.Sprintf("00000000-0000-4000-8000-%012d", requestCounter.n)
}

// withInject carries the error items to add to a forwarded CreateFleet answer.
func withInject(r *http.Request, items string) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), injectKey{}, items))
}

func injectFleetErrors(resp *http.Response) error {
	items, _ := resp.Request.Context().Value(injectKey{}).(string)
	if items == "" || resp.StatusCode != http.StatusOK {
		return nil
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	const end = "</CreateFleetResponse>"
	s := string(body)
	if i := strings.LastIndex(s, end); i >= 0 {
		s = s[:i] + "<errorSet>" + items + "</errorSet>" + s[i:]
	}
	resp.Body = io.NopCloser(strings.NewReader(s))
	resp.ContentLength = int64(len(s))
	resp.Header.Set("Content-Length", strconv.Itoa(len(s)))
	return nil
}

func xmlEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '&':
			b.WriteString("&amp;")
		case '"':
			b.WriteString("&quot;")
		case '\'':
			b.WriteString("&apos;")
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
