// Package faultproxy is an HTTP proxy for tests that sits in front of
// moto_server and answers chosen AWS actions the way AWS does when things go
// wrong: API errors in EC2's XML error format (throttling, quotas) and
// CreateFleet answers whose Errors list reports overrides that had no
// capacity. Everything else is forwarded unchanged.
package faultproxy

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
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
	// handle answers the request itself (returning true) or forwards it,
	// possibly rewritten, by returning false.
	handle func(w http.ResponseWriter, r *http.Request, form url.Values) (*http.Request, bool)
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
	p.server = httptest.NewServer(http.HandlerFunc(p.serve))
	p.URL = p.server.URL
	return p, nil
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
		if candidate.Action == action && (candidate.Times == 0 || candidate.hits < candidate.Times) {
			candidate.hits++
			rule = candidate
			break
		}
	}
	p.mu.Unlock()
	if rule != nil {
		next, answered := rule.handle(w, r, form)
		if answered {
			return
		}
		r = next
	}
	p.rp.ServeHTTP(w, r)
}

func setBody(r *http.Request, body []byte) {
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	r.Header.Set("Content-Length", strconv.Itoa(len(body)))
}

// APIError answers action with an EC2 error document, as AWS does for
// errors of the call itself.
func APIError(action string, times, status int, code, message string) *Rule {
	return &Rule{Action: action, Times: times, handle: func(w http.ResponseWriter, _ *http.Request, _ url.Values) (*http.Request, bool) {
		w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
		w.WriteHeader(status)
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>
<Response><Errors><Error><Code>%s</Code><Message>%s</Message></Error></Errors><RequestID>%s</RequestID></Response>`,
			xmlEscape(code), xmlEscape(message), requestID())
		return nil, true
	}}
}

// Throttle answers the first times calls of action with EC2's
// RequestLimitExceeded (HTTP 503), which SDK retryers treat as throttling.
func Throttle(action string, times int) *Rule {
	return APIError(action, times, http.StatusServiceUnavailable, "RequestLimitExceeded", "Request limit exceeded.")
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
