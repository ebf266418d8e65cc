package awsfault

import (
	"bytes"
	"encoding/xml"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"sync"
	"time"
)

// Lag makes EC2 behave as it does under load: CreateFleet acts at once
// but its answer comes after delay() (a caller that dies meanwhile never
// learns what it launched), and DescribeInstances calls that filter by tag
// do not list an instance until age after its launch (EC2's eventual
// consistency: a retry that looks for its claim's instance right after a
// crash does not find it). Calls by instance id see everything.
type Lag struct {
	Age   time.Duration
	Delay func() time.Duration

	mu       sync.Mutex
	launched map[string]time.Time // instance id -> when CreateFleet launched it
	hidden   int
	lost     int
}

// Rules are the proxy rules of the lag.
func (l *Lag) Rules() []*Rule {
	return []*Rule{
		{Action: "CreateFleet", handle: l.createFleet},
		{Action: "DescribeInstances", match: filtersByTag, handle: l.describeTagged},
	}
}

// Lost is how many CreateFleet answers never reached their caller (it
// gave up or died after EC2 had launched).
func (l *Lag) Lost() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lost
}

// Hidden is how many times an instance was left out of an answer.
func (l *Lag) Hidden() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.hidden
}

var (
	instanceIDsXML = regexp.MustCompile(`(?s)<instanceIds>(.*?)</instanceIds>`)
	instanceIDXML  = regexp.MustCompile(`i-[0-9a-f]+`)
)

func (l *Lag) createFleet(w http.ResponseWriter, r *http.Request, _ url.Values, forward http.Handler) {
	rec := httptest.NewRecorder()
	forward.ServeHTTP(rec, r)
	now := time.Now()
	l.mu.Lock()
	if l.launched == nil {
		l.launched = map[string]time.Time{}
	}
	for _, set := range instanceIDsXML.FindAllSubmatch(rec.Body.Bytes(), -1) {
		for _, id := range instanceIDXML.FindAll(set[1], -1) {
			l.launched[string(id)] = now
		}
	}
	l.mu.Unlock()
	if l.Delay != nil {
		select {
		case <-time.After(l.Delay()):
		case <-r.Context().Done():
			l.mu.Lock()
			l.lost++
			l.mu.Unlock()
			return // the caller gave up (or died) before the answer came
		}
	}
	copyRecorded(w, rec, rec.Body.Bytes())
}

func (l *Lag) describeTagged(w http.ResponseWriter, r *http.Request, _ url.Values, forward http.Handler) {
	rec := httptest.NewRecorder()
	forward.ServeHTTP(rec, r)
	body := rec.Body.Bytes()
	if rec.Code == http.StatusOK {
		if filtered, n, err := l.dropFresh(body, time.Now()); err == nil && n > 0 {
			body = filtered
			l.mu.Lock()
			l.hidden += n
			l.mu.Unlock()
		}
	}
	copyRecorded(w, rec, body)
}

// node is any XML element, kept whole.
type node struct {
	XMLName xml.Name
	Attrs   []xml.Attr `xml:",any,attr"`
	Text    []byte     `xml:",chardata"`
	Nodes   []*node    `xml:",any"`
}

// dropFresh removes from a DescribeInstances answer the reservations whose
// instances were launched less than Age ago.
func (l *Lag) dropFresh(body []byte, now time.Time) ([]byte, int, error) {
	var root node
	if err := xml.Unmarshal(body, &root); err != nil {
		return nil, 0, err
	}
	l.mu.Lock()
	fresh := func(id string) bool {
		t, ok := l.launched[id]
		return ok && now.Sub(t) < l.Age
	}
	dropped := 0
	for _, set := range root.Nodes {
		if set.XMLName.Local != "reservationSet" {
			continue
		}
		kept := set.Nodes[:0]
		for _, reservation := range set.Nodes {
			if ids := instanceIDs(reservation); len(ids) > 0 && allFresh(ids, fresh) {
				dropped += len(ids)
				continue
			}
			kept = append(kept, reservation)
		}
		set.Nodes = kept
	}
	l.mu.Unlock()
	if dropped == 0 {
		return body, 0, nil
	}
	stripSpace(&root)
	out, err := xml.Marshal(&root)
	return append([]byte(xml.Header), out...), dropped, err
}

func instanceIDs(reservation *node) []string {
	var ids []string
	for _, c := range reservation.Nodes {
		if c.XMLName.Local != "instancesSet" {
			continue
		}
		for _, inst := range c.Nodes {
			for _, f := range inst.Nodes {
				if f.XMLName.Local == "instanceId" {
					ids = append(ids, string(bytes.TrimSpace(f.Text)))
				}
			}
		}
	}
	return ids
}

func allFresh(ids []string, fresh func(string) bool) bool {
	for _, id := range ids {
		if !fresh(id) {
			return false
		}
	}
	return true
}

// stripSpace leaves the namespace to the root's xmlns attribute, so the
// encoder does not repeat it on every element.
func stripSpace(n *node) {
	n.XMLName.Space = ""
	for _, c := range n.Nodes {
		stripSpace(c)
	}
}

func copyRecorded(w http.ResponseWriter, rec *httptest.ResponseRecorder, body []byte) {
	for k, vs := range rec.Header() {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(rec.Code)
	_, _ = w.Write(body)
}
