package bootstrap

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/kubernetes/pkg/util/taints"

	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
)

const (
	// UnregisteredTaintKey is the taint every new node registers with; the
	// registration controller removes it once the Node is linked to its NodeClaim.
	UnregisteredTaintKey = karpv1.UnregisteredTaintKey

	// MaxUserDataBytes is EC2's limit on user data before base64 encoding.
	MaxUserDataBytes = 16 * 1024

	// Paths the script writes. The kubelet environment file is the one
	// kubeadm's kubelet drop-in (10-kubeadm.conf) reads KUBELET_EXTRA_ARGS
	// from: /etc/default/kubelet on deb systems, /etc/sysconfig/kubelet on rpm.
	userDataDir       = "/var/lib/fleet-scheduler"
	kubeletEnvDir     = "/etc/default"
	kubeletEnvFile    = "/etc/default/kubelet"
	kubeletEnvFileRPM = "/etc/sysconfig/kubelet"
	kubeletEnvDirRPM  = "/etc/sysconfig"
	heredocDelimiter  = "FLEET_SCHEDULER_USER_DATA_EOF"
	// joinConfigDelimiter ends the JoinConfiguration's heredoc; no line of
	// it can be this (every value in it is validated first).
	joinConfigDelimiter = "FLEET_SCHEDULER_JOIN_CONFIG_EOF"
)

// UnregisteredTaint is the `karpenter.sh/unregistered:NoExecute` taint.
var UnregisteredTaint = karpv1.UnregisteredNoExecuteTaint()

// ErrUserDataJoins is returned when the EC2NodeClass user data runs `kubeadm
// join` itself: the node would join twice, or under a name nothing waits for.
var ErrUserDataJoins = errors.New("the EC2NodeClass userData runs `kubeadm join` itself; remove that line: fleet-scheduler appends the join with the node name, labels, taints and credentials the NodeClaim needs")

// UserDataInput is everything Render needs.
type UserDataInput struct {
	// APIServerEndpoint is host:port (an https:// URL is accepted too).
	APIServerEndpoint string
	// Credentials are the bootstrap token and CA hashes.
	Credentials JoinCredentials
	// NodeName is the name the node must register under: the name its
	// pods were nominated to.
	NodeName string
	// Labels are the node's labels. Those the kubelet may set itself
	// (KubeletSettableLabels) go on --node-labels; the rest are left to the
	// registration controller.
	Labels map[string]string
	// Taints are the NodePool's taints; StartupTaints its startupTaints. The
	// unregistered taint is always added.
	Taints        []corev1.Taint
	StartupTaints []corev1.Taint
	// Kubelet holds the EC2NodeClass kubelet settings passed as flags.
	Kubelet *KubeletConfig
	// UserData is the EC2NodeClass userData: a script (run first, from a
	// file) or a MIME multipart archive of text/x-shellscript parts.
	UserData string
}

// KubeletConfig mirrors the kubelet block of a Karpenter v1 EC2NodeClass;
// each set field becomes a kubelet flag.
type KubeletConfig struct {
	ClusterDNS                  []string
	MaxPods                     *int32
	PodsPerCore                 *int32
	SystemReserved              map[string]string
	KubeReserved                map[string]string
	EvictionHard                map[string]string
	EvictionSoft                map[string]string
	EvictionSoftGracePeriod     map[string]time.Duration
	EvictionMaxPodGracePeriod   *int32
	ImageGCHighThresholdPercent *int32
	ImageGCLowThresholdPercent  *int32
	CPUCFSQuota                 *bool
}

// Render returns the EC2 user data for a node: a bash script that runs the
// EC2NodeClass user data, writes the kubelet flags (node labels, taints and
// kubelet settings) to KUBELET_EXTRA_ARGS, writes a kubeadm
// JoinConfiguration (mode 0600) and runs `kubeadm join --config` with it.
// Every value is validated the way the kubelet and kubeadm would and
// quoted for bash; the token appears only in the JoinConfiguration.
func Render(in UserDataInput) (string, error) {
	endpoint, err := NormalizeEndpoint(in.APIServerEndpoint)
	if err != nil {
		return "", fmt.Errorf("API server endpoint: %w", err)
	}
	if err := in.Credentials.Validate(); err != nil {
		return "", err
	}
	hashes, err := normalizeCACertHashes(in.Credentials.CACertHashes)
	if err != nil {
		return "", err
	}
	if in.NodeName == "" {
		return "", errors.New("no node name")
	}
	if errs := validation.IsDNS1123Subdomain(in.NodeName); len(errs) > 0 {
		return "", fmt.Errorf("node name %q: %s", in.NodeName, strings.Join(errs, "; "))
	}
	kubeletArgs, err := kubeletFlags(in)
	if err != nil {
		return "", err
	}
	scripts, err := userScripts(in.UserData)
	if err != nil {
		return "", err
	}

	var b strings.Builder
	b.WriteString("#!/bin/bash\n")
	fmt.Fprintf(&b, "# fleet-scheduler user data for node %s: runs the EC2NodeClass userData, then kubeadm join.\n", in.NodeName)
	b.WriteString("set -euo pipefail\n")

	if len(scripts) > 0 {
		b.WriteString("\n# EC2NodeClass userData\n")
		fmt.Fprintf(&b, "mkdir -p %s\n", userDataDir)
		for i, s := range scripts {
			path := fmt.Sprintf("%s/user-data-%d", userDataDir, i+1)
			delim := heredocDelimiter
			for n := 2; slices.Contains(strings.Split(s, "\n"), delim); n++ {
				delim = fmt.Sprintf("%s_%d", heredocDelimiter, n)
			}
			body := s
			if !strings.HasSuffix(body, "\n") {
				body += "\n"
			}
			fmt.Fprintf(&b, "cat > %s <<'%s'\n%s%s\n", path, delim, body, delim)
			fmt.Fprintf(&b, "chmod 0700 %s\n", path)
			if strings.HasPrefix(s, "#!") {
				fmt.Fprintf(&b, "%s\n", path)
			} else {
				fmt.Fprintf(&b, "/bin/bash %s\n", path)
			}
		}
	}

	// Every value below is checked already; quoting cannot fail on them.
	var quoteErr error
	q := func(s string) string {
		out, err := quote(s)
		quoteErr = errors.Join(quoteErr, err)
		return out
	}
	b.WriteString("\n# kubelet flags, read by kubeadm's kubelet drop-in (10-kubeadm.conf)\n")
	envLine := q("KUBELET_EXTRA_ARGS=" + strings.Join(kubeletArgs, " "))
	fmt.Fprintf(&b, "mkdir -p %s\n", kubeletEnvDir)
	fmt.Fprintf(&b, "printf '%%s\\n' %s > %s\n", envLine, kubeletEnvFile)
	fmt.Fprintf(&b, "if [ -d %s ]; then cp %s %s; fi\n", kubeletEnvDirRPM, kubeletEnvFile, kubeletEnvFileRPM)

	// The token goes to kubeadm in a file only root can read, not on a
	// command line (visible to every local user in the process table).
	joinConfig, err := joinConfiguration(endpoint, in.Credentials, hashes, in.NodeName)
	if err != nil {
		return "", err
	}
	b.WriteString("\n# join the cluster: kubeadm reads the token from a file only root can read\n")
	fmt.Fprintf(&b, "install -d -m 0700 %s\n", userDataDir)
	fmt.Fprintf(&b, "install -m 0600 /dev/null %s\n", joinConfigFile)
	fmt.Fprintf(&b, "cat > %s <<'%s'\n%s%s\n", joinConfigFile, joinConfigDelimiter, joinConfig, joinConfigDelimiter)
	fmt.Fprintf(&b, "kubeadm join --config %s\n", joinConfigFile)
	fmt.Fprintf(&b, "rm -f %s\n", joinConfigFile)
	if quoteErr != nil {
		return "", quoteErr
	}

	out := b.String()
	if len(out) > MaxUserDataBytes {
		return "", fmt.Errorf("user data is %d bytes, over EC2's limit of %d; shorten the EC2NodeClass userData", len(out), MaxUserDataBytes)
	}
	return out, nil
}

// kubeletFlags builds KUBELET_EXTRA_ARGS. Values end up in a systemd
// environment file and are split on whitespace there, so beyond the label
// and taint syntax checks nothing may carry whitespace, quotes, backslashes
// or $.
func kubeletFlags(in UserDataInput) ([]string, error) {
	var args []string
	add := func(flag, value string) error {
		if strings.ContainsAny(value, " \t\r\n\"'`\\$") || strings.ContainsFunc(value, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			return fmt.Errorf("kubelet flag --%s: value %q holds whitespace, a quote, a backslash or $", flag, value)
		}
		args = append(args, "--"+flag+"="+value)
		return nil
	}

	settable, _ := KubeletSettableLabels(in.Labels)
	if len(settable) > 0 {
		keys := slices.Sorted(maps.Keys(settable))
		pairs := make([]string, 0, len(keys))
		for _, k := range keys {
			if errs := validation.IsQualifiedName(k); len(errs) > 0 {
				return nil, fmt.Errorf("label key %q: %s", k, strings.Join(errs, "; "))
			}
			if errs := validation.IsValidLabelValue(settable[k]); len(errs) > 0 {
				return nil, fmt.Errorf("label %q value %q: %s", k, settable[k], strings.Join(errs, "; "))
			}
			pairs = append(pairs, k+"="+settable[k])
		}
		if err := add("node-labels", strings.Join(pairs, ",")); err != nil {
			return nil, err
		}
	}

	taints := []corev1.Taint{UnregisteredTaint}
	for _, t := range slices.Concat(in.Taints, in.StartupTaints) {
		if slices.ContainsFunc(taints, func(o corev1.Taint) bool { return o.Key == t.Key && o.Effect == t.Effect }) {
			continue
		}
		if err := checkTaint(t); err != nil {
			return nil, err
		}
		taints = append(taints, t)
	}
	specs := make([]string, 0, len(taints))
	for _, t := range taints {
		specs = append(specs, t.ToString())
	}
	if err := add("register-with-taints", strings.Join(specs, ",")); err != nil {
		return nil, err
	}

	k := in.Kubelet
	if k == nil {
		return args, nil
	}
	var errs []error
	addInt := func(flag string, v *int32) {
		if v != nil {
			if *v < 0 {
				errs = append(errs, fmt.Errorf("kubelet flag --%s: negative value %d", flag, *v))
				return
			}
			errs = append(errs, add(flag, strconv.Itoa(int(*v))))
		}
	}
	addMap := func(flag, sep string, m map[string]string) {
		if len(m) == 0 {
			return
		}
		var parts []string
		for _, key := range slices.Sorted(maps.Keys(m)) {
			if strings.ContainsAny(key, ",=<") || strings.ContainsAny(m[key], ",") {
				errs = append(errs, fmt.Errorf("kubelet flag --%s: entry %q=%q holds a separator", flag, key, m[key]))
				return
			}
			parts = append(parts, key+sep+m[key])
		}
		errs = append(errs, add(flag, strings.Join(parts, ",")))
	}
	if len(k.ClusterDNS) > 0 {
		errs = append(errs, add("cluster-dns", strings.Join(k.ClusterDNS, ",")))
	}
	addInt("max-pods", k.MaxPods)
	addInt("pods-per-core", k.PodsPerCore)
	addMap("system-reserved", "=", k.SystemReserved)
	addMap("kube-reserved", "=", k.KubeReserved)
	addMap("eviction-hard", "<", k.EvictionHard)
	addMap("eviction-soft", "<", k.EvictionSoft)
	if len(k.EvictionSoftGracePeriod) > 0 {
		grace := make(map[string]string, len(k.EvictionSoftGracePeriod))
		for s, d := range k.EvictionSoftGracePeriod {
			grace[s] = d.String()
		}
		addMap("eviction-soft-grace-period", "=", grace)
	}
	addInt("eviction-max-pod-grace-period", k.EvictionMaxPodGracePeriod)
	addInt("image-gc-high-threshold", k.ImageGCHighThresholdPercent)
	addInt("image-gc-low-threshold", k.ImageGCLowThresholdPercent)
	if k.CPUCFSQuota != nil {
		errs = append(errs, add("cpu-cfs-quota", strconv.FormatBool(*k.CPUCFSQuota)))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return args, nil
}

// checkTaint checks a taint the way the kubelet checks --register-with-taints
// (k8s.io/kubernetes/pkg/util/taints), which also wants an effect.
func checkTaint(t corev1.Taint) error {
	err := taints.CheckTaintValidation(t)
	if err == nil && t.Effect == "" {
		err = errors.New("no effect: want NoSchedule, PreferNoSchedule or NoExecute")
	}
	if err != nil {
		return fmt.Errorf("taint %q value %q effect %q: %w", t.Key, t.Value, t.Effect, err)
	}
	return nil
}
