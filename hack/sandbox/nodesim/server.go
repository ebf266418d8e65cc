package nodesim

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	certutil "k8s.io/client-go/util/cert"
	"k8s.io/utils/ptr"
)

// StaticPod is a pod the kubelet runs from a manifest on the node (the
// control-plane components kubeadm writes to /etc/kubernetes/manifests)
// and mirrors to the API server. Its container log is LogPath, so
// `kubectl logs` of the mirror pod shows the real component's output.
type StaticPod struct {
	Name      string // the pod is <Name>-<node>
	Namespace string
	Labels    map[string]string
	Image     string
	Command   []string
	LogPath   string
}

// createMirrorPods creates the mirror pods of the static pods with the
// node's credentials; NodeRestriction lets a node create mirror pods
// bound to itself and owned by its Node.
func (k *Kubelet) createMirrorPods(ctx context.Context, node *corev1.Node) {
	for _, sp := range k.opts.StaticPods {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{
				Name: sp.Name + "-" + node.Name, Namespace: sp.Namespace, Labels: sp.Labels,
				Annotations: map[string]string{
					corev1.MirrorPodAnnotationKey: randomID(sp.Name + node.Name),
					"kubernetes.io/config.hash":   randomID(sp.Name + node.Name),
					"kubernetes.io/config.source": "file",
				},
				OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: node.Name, UID: node.UID, Controller: ptr.To(true)}},
			},
			Spec: corev1.PodSpec{
				NodeName: node.Name, HostNetwork: true, PriorityClassName: "system-node-critical",
				Containers:  []corev1.Container{{Name: sp.Name, Image: sp.Image, Command: sp.Command}},
				Tolerations: []corev1.Toleration{{Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute}},
			},
		}
		_, err := k.client.CoreV1().Pods(sp.Namespace).Create(ctx, pod, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) && ctx.Err() == nil {
			k.log.Info("Creating mirror pod failed", "pod", sp.Namespace+"/"+pod.Name, "err", err)
		}
	}
}

// The kubelet's HTTPS server, reached through the API server's egress
// proxy (see Proxy): GET /healthz and /containerLogs/<ns>/<pod>/<container>
// (follow, tailLines, limitBytes), which is what `kubectl logs` asks for.
// Other kubelet endpoints (exec, attach, port-forward, stats) answer 404.

func (k *Kubelet) tlsConfig() (*tls.Config, error) {
	k.serverOnce.Do(func() {
		var certPEM, keyPEM []byte
		certPEM, keyPEM, k.serverErr = certutil.GenerateSelfSignedCertKey(k.opts.NodeName, []net.IP{net.ParseIP(k.opts.Hardware.PrivateIP)}, nil)
		if k.serverErr != nil {
			return
		}
		var cert tls.Certificate
		cert, k.serverErr = tls.X509KeyPair(certPEM, keyPEM)
		k.serverTLS = &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"http/1.1"}}
	})
	return k.serverTLS, k.serverErr
}

// ServeConn serves one TLS connection to the kubelet's port.
func (k *Kubelet) ServeConn(conn net.Conn) {
	cfg, err := k.tlsConfig()
	if err != nil {
		conn.Close()
		return
	}
	srv := &http.Server{Handler: http.HandlerFunc(k.serveHTTP), ReadHeaderTimeout: 10 * time.Second}
	_ = srv.Serve(&oneConnListener{conn: tls.Server(conn, cfg)})
}

func (k *Kubelet) serveHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/healthz":
		_, _ = io.WriteString(w, "ok")
	case strings.HasPrefix(r.URL.Path, "/containerLogs/"):
		k.serveLogs(w, r)
	default:
		http.Error(w, "not served by the fleet-scheduler node simulator: "+r.URL.Path, http.StatusNotFound)
	}
}

func (k *Kubelet) serveLogs(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/containerLogs/"), "/")
	if len(parts) != 3 {
		http.Error(w, "want /containerLogs/<namespace>/<pod>/<container>", http.StatusBadRequest)
		return
	}
	ns, pod, container := parts[0], parts[1], parts[2]
	var logPath string
	for _, sp := range k.opts.StaticPods {
		if sp.Namespace == ns && sp.Name+"-"+k.opts.NodeName == pod && sp.Name == container {
			logPath = sp.LogPath
		}
	}
	q := r.URL.Query()
	follow, _ := strconv.ParseBool(q.Get("follow"))
	if logPath == "" {
		// A simulated container writes nothing.
		w.WriteHeader(http.StatusOK)
		if follow {
			<-r.Context().Done()
		}
		return
	}
	f, err := os.Open(logPath)
	if err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	defer f.Close()
	tail := int64(-1)
	if v := q.Get("tailLines"); v != "" {
		tail, _ = strconv.ParseInt(v, 10, 64)
	}
	if tail >= 0 {
		if err := seekTail(f, tail); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
	}
	var out io.Writer = w
	if v := q.Get("limitBytes"); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n > 0 {
			out = &limitWriter{w: w, n: n}
		}
	}
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	for {
		if _, err := io.Copy(out, f); err != nil {
			return
		}
		if flusher != nil {
			flusher.Flush()
		}
		if !follow {
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// seekTail positions f at the start of its last n lines.
func seekTail(f *os.File, n int64) error {
	data, err := io.ReadAll(f)
	if err != nil {
		return err
	}
	end := len(data)
	if end > 0 && data[end-1] == '\n' {
		end-- // the last line's newline
	}
	start := end
	if n > 0 {
		start = 0
		lines := int64(0)
		for i := end - 1; i >= 0; i-- {
			if data[i] == '\n' {
				if lines++; lines == n {
					start = i + 1
					break
				}
			}
		}
	} else if end < len(data) {
		start = len(data)
	}
	_, err = f.Seek(int64(start), io.SeekStart)
	return err
}

type limitWriter struct {
	w io.Writer
	n int64
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.w.Write(p)
	l.n -= int64(n)
	return n, err
}

// oneConnListener hands out one connection, then blocks until it is closed.
type oneConnListener struct {
	conn net.Conn
	once sync.Once
	done chan struct{}
	mu   sync.Mutex
}

func (l *oneConnListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	if l.done == nil {
		l.done = make(chan struct{})
	}
	done := l.done
	l.mu.Unlock()
	var c net.Conn
	l.once.Do(func() { c = &closeNotifyConn{Conn: l.conn, closed: done} })
	if c != nil {
		return c, nil
	}
	<-done
	return nil, net.ErrClosed
}

func (l *oneConnListener) Close() error { return nil }

func (l *oneConnListener) Addr() net.Addr { return l.conn.LocalAddr() }

type closeNotifyConn struct {
	net.Conn
	closed chan struct{}
	once   sync.Once
}

func (c *closeNotifyConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return c.Conn.Close()
}

// Proxy is the API server's egress proxy for cluster traffic (its
// --egress-selector-config-file points "cluster" at it, HTTP CONNECT over
// TLS with client certificates: plain http panics kube-apiserver v1.37's
// egress selector, which reads a TLS config that http:// forbids): a
// CONNECT to <node InternalIP>:10250 reaches that node's simulated kubelet,
// as Konnectivity would reach a real one. Addresses registered with
// Forward (a program the sandbox runs as if on a node, such as KEDA's
// metrics server behind its APIService) are carried to where the program
// listens.
type Proxy struct {
	listener net.Listener
	lookup   func(ip string) *Kubelet

	mu       sync.Mutex
	forwards map[string]string
}

// NewProxy listens on a free loopback port with TLS.
func NewProxy(lookup func(ip string) *Kubelet, cfg *tls.Config) (*Proxy, error) {
	l, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		return nil, err
	}
	p := &Proxy{listener: l, lookup: lookup}
	go p.serve()
	return p, nil
}

// URL is the proxy's address for the egress selector configuration.
func (p *Proxy) URL() string { return "https://" + p.listener.Addr().String() }

// Close stops accepting connections.
func (p *Proxy) Close() error { return p.listener.Close() }

// Forward carries CONNECTs to addr (host:port) to the TCP address to.
func (p *Proxy) Forward(addr, to string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.forwards == nil {
		p.forwards = map[string]string{}
	}
	p.forwards[addr] = to
}

func (p *Proxy) forward(addr string) (string, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	to, ok := p.forwards[addr]
	return to, ok
}

func (p *Proxy) serve() {
	for {
		conn, err := p.listener.Accept()
		if err != nil {
			return
		}
		go p.handle(conn)
	}
}

func (p *Proxy) handle(conn net.Conn) {
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(conn)
	req, err := http.ReadRequest(br)
	if err != nil {
		conn.Close()
		return
	}
	_ = conn.SetReadDeadline(time.Time{})
	if req.Method != http.MethodConnect {
		fmt.Fprintf(conn, "HTTP/1.1 405 Method Not Allowed\r\n\r\n")
		conn.Close()
		return
	}
	if to, ok := p.forward(req.Host); ok {
		splice(conn, br, to)
		return
	}
	host, _, err := net.SplitHostPort(req.Host)
	var k *Kubelet
	if err == nil {
		k = p.lookup(host)
	}
	if k == nil {
		fmt.Fprintf(conn, "HTTP/1.1 502 Bad Gateway\r\n\r\nno simulated kubelet at %s\n", req.Host)
		conn.Close()
		return
	}
	fmt.Fprintf(conn, "HTTP/1.1 200 Connection established\r\n\r\n")
	if br.Buffered() > 0 {
		conn.Close()
		return
	}
	k.ServeConn(conn)
}

// splice connects the CONNECT client to the TCP address to and copies
// both ways until either side closes.
func splice(conn net.Conn, br *bufio.Reader, to string) {
	defer conn.Close()
	up, err := net.DialTimeout("tcp", to, 10*time.Second)
	if err != nil {
		fmt.Fprintf(conn, "HTTP/1.1 502 Bad Gateway\r\n\r\n%v\n", err)
		return
	}
	defer up.Close()
	fmt.Fprintf(conn, "HTTP/1.1 200 Connection established\r\n\r\n")
	go func() {
		_, _ = io.Copy(up, br) // what the client sent after CONNECT, then the rest
		if c, ok := up.(*net.TCPConn); ok {
			_ = c.CloseWrite()
		}
	}()
	_, _ = io.Copy(conn, up)
}
