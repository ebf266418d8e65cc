package nodesim

import (
	"context"
	"encoding/base64"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/go-logr/logr"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"

	"github.com/fleet-scheduler/fleet-scheduler/hack/sandbox/instances"
)

// ClusterTagPrefix is the prefix of the tag that names an instance's
// cluster, kubernetes.io/cluster/<name> (provision/ec2.ClusterTagKey).
const ClusterTagPrefix = "kubernetes.io/cluster/"

// EC2API is what the simulator asks EC2 (moto): which instances run, and
// what each one knows about itself.
type EC2API interface {
	DescribeInstances(context.Context, *ec2.DescribeInstancesInput, ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error)
	DescribeInstanceAttribute(context.Context, *ec2.DescribeInstanceAttributeInput, ...func(*ec2.Options)) (*ec2.DescribeInstanceAttributeOutput, error)
	DescribeInstanceTypes(context.Context, *ec2.DescribeInstanceTypesInput, ...func(*ec2.Options)) (*ec2.DescribeInstanceTypesOutput, error)
	DescribeVolumes(context.Context, *ec2.DescribeVolumesInput, ...func(*ec2.Options)) (*ec2.DescribeVolumesOutput, error)
}

// Options configure the simulator.
type Options struct {
	EC2         EC2API
	ClusterName string
	Region      string
	// StateDir holds a directory per node.
	StateDir string
	// BootDelay is the time from `running` to the user data's join (default 5s).
	BootDelay time.Duration
	// PollInterval is how often moto is asked for instances (default 1s).
	PollInterval time.Duration
	// DiscoveryTimeout bounds kubeadm's token discovery (default 1m).
	DiscoveryTimeout time.Duration
	// Kubelet are the kubelet's settings before kubelet-config applies.
	Kubelet KubeletSettings
	// KernelMemoryFraction: see DefaultKernelMemoryFraction.
	KernelMemoryFraction float64
	// PodStartDelay and PodStopDelay: see KubeletOptions.
	PodStartDelay, PodStopDelay time.Duration
	// Progress receives one line per node event (joined, failed, stopped).
	Progress func(format string, args ...any)
	Log      logr.Logger
}

// Phase is where a machine is.
type Phase string

const (
	PhaseBooting Phase = "Booting"
	PhaseJoining Phase = "Joining"
	PhaseJoined  Phase = "Joined"
	PhaseFailed  Phase = "Failed"
	PhaseStopped Phase = "Stopped"
)

// MachineStatus is what the simulator knows of one machine.
type MachineStatus struct {
	InstanceID   string
	InstanceType string
	Zone         string
	NodeName     string
	Phase        Phase
	// Error says why a Failed machine never joined.
	Error string
}

type machine struct {
	status  MachineStatus
	cancel  context.CancelFunc
	done    chan struct{}
	kubelet *Kubelet
}

// Simulator boots moto's instances and runs their kubelets.
type Simulator struct {
	opts Options
	log  logr.Logger

	mu       sync.Mutex
	machines map[string]*machine
	types    map[string]ec2types.InstanceTypeInfo
	byIP     map[string]*Kubelet
	wg       sync.WaitGroup
}

// New returns a simulator; Run starts it.
func New(o Options) *Simulator {
	if o.BootDelay == 0 {
		o.BootDelay = 5 * time.Second
	}
	if o.PollInterval == 0 {
		o.PollInterval = time.Second
	}
	if o.DiscoveryTimeout == 0 {
		o.DiscoveryTimeout = time.Minute
	}
	if o.Kubelet.MaxPods == 0 {
		o.Kubelet = DefaultKubeletSettings()
	}
	if o.Progress == nil {
		o.Progress = func(string, ...any) {}
	}
	return &Simulator{opts: o, log: o.Log, machines: map[string]*machine{}, types: map[string]ec2types.InstanceTypeInfo{}, byIP: map[string]*Kubelet{}}
}

// Run polls moto until ctx ends, then stops every kubelet it started.
func (s *Simulator) Run(ctx context.Context) {
	defer s.stopAll()
	for {
		if err := s.poll(ctx); err != nil && ctx.Err() == nil {
			s.log.Info("Listing instances failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(s.opts.PollInterval):
		}
	}
}

// Kubelet returns the running kubelet whose node has the address ip.
func (s *Simulator) Kubelet(ip string) *Kubelet {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.byIP[ip]
}

// running records a kubelet under its address until ctx ends.
func (s *Simulator) running(ctx context.Context, k *Kubelet) {
	s.mu.Lock()
	s.byIP[k.InternalIP()] = k
	s.mu.Unlock()
	k.Run(ctx)
	s.mu.Lock()
	if s.byIP[k.InternalIP()] == k {
		delete(s.byIP, k.InternalIP())
	}
	s.mu.Unlock()
}

// Machines returns the status of every machine, sorted by instance id.
func (s *Simulator) Machines() []MachineStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]MachineStatus, 0, len(s.machines))
	for _, m := range s.machines {
		out = append(out, m.status)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].InstanceID < out[j].InstanceID })
	return out
}

// Machine returns the status of one machine.
func (s *Simulator) Machine(instanceID string) (MachineStatus, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.machines[instanceID]
	if !ok {
		return MachineStatus{}, false
	}
	return m.status, true
}

func (s *Simulator) poll(ctx context.Context) error {
	running := map[string]ec2types.Instance{}
	for inst, err := range instances.All(ctx, s.opts.EC2,
		ec2types.Filter{Name: aws.String("tag-key"), Values: []string{ClusterTagPrefix + s.opts.ClusterName}}) {
		if err != nil {
			return err
		}
		if inst.State != nil && inst.State.Name == ec2types.InstanceStateNameRunning {
			running[aws.ToString(inst.InstanceId)] = inst
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, m := range s.machines {
		if _, ok := running[id]; !ok && m.status.Phase != PhaseStopped {
			s.stopLocked(m, "instance is no longer running")
		}
	}
	for id, inst := range running {
		if _, ok := s.machines[id]; ok {
			continue
		}
		mctx, cancel := context.WithCancel(ctx)
		m := &machine{
			status: MachineStatus{
				InstanceID: id, InstanceType: string(inst.InstanceType), Phase: PhaseBooting,
				Zone: aws.ToString(inst.Placement.AvailabilityZone),
			},
			cancel: cancel, done: make(chan struct{}),
		}
		s.machines[id] = m
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer close(m.done)
			s.boot(mctx, m, inst)
		}()
	}
	return nil
}

func (s *Simulator) stopLocked(m *machine, why string) {
	m.cancel()
	prev := m.status.Phase
	m.status.Phase = PhaseStopped
	if prev == PhaseJoined {
		s.opts.Progress("node %s stopped: %s (instance %s)", m.status.NodeName, why, m.status.InstanceID)
	}
	s.log.Info("Machine stopped", "instance", m.status.InstanceID, "node", m.status.NodeName, "reason", why, "was", prev)
}

func (s *Simulator) stopAll() {
	s.mu.Lock()
	for _, m := range s.machines {
		m.cancel()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *Simulator) setPhase(m *machine, p Phase, nodeName, errMsg string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m.status.Phase == PhaseStopped {
		return false
	}
	m.status.Phase = p
	if nodeName != "" {
		m.status.NodeName = nodeName
	}
	m.status.Error = errMsg
	return true
}

// boot is one machine's life: wait for the boot delay, read the user data
// and IMDS, join, run the kubelet until the instance stops.
func (s *Simulator) boot(ctx context.Context, m *machine, inst ec2types.Instance) {
	id := aws.ToString(inst.InstanceId)
	log := s.log.WithValues("instance", id)
	ctx = klog.NewContext(ctx, log)
	select {
	case <-ctx.Done():
		return
	case <-time.After(s.opts.BootDelay):
	}
	fail := func(err error) {
		if ctx.Err() != nil {
			return
		}
		if s.setPhase(m, PhaseFailed, "", err.Error()) {
			log.Info("Machine never joins", "err", err)
			s.opts.Progress("instance %s (%s) never joins: %v", id, inst.InstanceType, err)
		}
	}
	hw, err := s.hardware(ctx, inst)
	if err != nil {
		fail(fmt.Errorf("reading the machine's hardware: %w", err))
		return
	}
	attr, err := s.opts.EC2.DescribeInstanceAttribute(ctx, &ec2.DescribeInstanceAttributeInput{
		InstanceId: aws.String(id), Attribute: ec2types.InstanceAttributeNameUserData,
	})
	if err != nil {
		fail(fmt.Errorf("reading user data: %w", err))
		return
	}
	var userData string
	if attr.UserData != nil && attr.UserData.Value != nil {
		raw, err := base64.StdEncoding.DecodeString(aws.ToString(attr.UserData.Value))
		if err != nil {
			fail(fmt.Errorf("user data is not base64: %w", err))
			return
		}
		userData = string(raw)
	}
	if strings.TrimSpace(userData) == "" {
		fail(fmt.Errorf("the instance has no user data"))
		return
	}
	s.setPhase(m, PhaseJoining, "", "")
	joined, err := Join(ctx, userData, hw.Hostname, s.opts.Kubelet, JoinOptions{
		Dir: filepath.Join(s.opts.StateDir, id), DiscoveryTimeout: s.opts.DiscoveryTimeout, CSRTimeout: 2 * time.Minute,
	})
	if err != nil {
		fail(err)
		return
	}
	k, err := s.kubelet(joined.NodeName, joined.Config, hw, joined, nil)
	if err != nil {
		fail(err)
		return
	}
	if err := k.Register(ctx); err != nil {
		fail(err)
		return
	}
	if !s.setPhase(m, PhaseJoined, joined.NodeName, "") {
		return
	}
	s.mu.Lock()
	m.kubelet = k
	s.mu.Unlock()
	s.opts.Progress("node %s joined: instance %s, %s in %s, %s CPU / %s allocatable", joined.NodeName, id, hw.InstanceType, hw.Zone,
		k.allocatable.Cpu(), k.allocatable.Memory())
	s.running(ctx, k)
}

// kubelet builds the kubelet of a node. A joined node's kubelet takes its
// settings, labels, taints and provider ID from the join; a static node's
// from n.
func (s *Simulator) kubelet(nodeName string, cfg *rest.Config, hw Hardware, j *Joined, n *StaticNode) (*Kubelet, error) {
	opts := KubeletOptions{
		NodeName: nodeName, Config: cfg, Hardware: hw, Settings: s.opts.Kubelet,
		KernelMemoryFraction: s.opts.KernelMemoryFraction,
		PodStartDelay:        s.opts.PodStartDelay, PodStopDelay: s.opts.PodStopDelay,
		Log: s.log,
	}
	if j != nil {
		opts.Settings, opts.Labels, opts.Taints, opts.ProviderID = j.Settings, j.Join.Labels, j.Join.Taints, j.ProviderID
	}
	if n != nil {
		opts.StaticPods = n.StaticPods
		if n.Config != nil {
			opts.Labels, opts.Taints = n.Labels, n.Taints
		}
	}
	return NewKubelet(opts)
}

// hardware is what the machine knows about itself: IMDS's instance id,
// type, zone and addresses; the CPUs and memory the kernel finds (the
// instance type's); the root volume's size.
func (s *Simulator) hardware(ctx context.Context, inst ec2types.Instance) (Hardware, error) {
	it, err := s.InstanceType(ctx, string(inst.InstanceType))
	if err != nil {
		return Hardware{}, err
	}
	hw := Hardware{
		InstanceID:    aws.ToString(inst.InstanceId),
		InstanceType:  string(inst.InstanceType),
		Zone:          aws.ToString(inst.Placement.AvailabilityZone),
		Region:        s.opts.Region,
		PrivateIP:     aws.ToString(inst.PrivateIpAddress),
		Hostname:      strings.SplitN(aws.ToString(inst.PrivateDnsName), ".", 2)[0],
		Arch:          KubernetesArch(string(inst.Architecture)),
		RootVolumeGiB: 20,
	}
	if hw.Hostname == "" {
		hw.Hostname = hw.InstanceID
	}
	if inst.Architecture == "" && it.ProcessorInfo != nil && len(it.ProcessorInfo.SupportedArchitectures) > 0 {
		hw.Arch = KubernetesArch(string(it.ProcessorInfo.SupportedArchitectures[0]))
	}
	if it.VCpuInfo != nil {
		hw.VCPUs = int64(aws.ToInt32(it.VCpuInfo.DefaultVCpus))
	}
	if it.MemoryInfo != nil {
		hw.MemoryMiB = aws.ToInt64(it.MemoryInfo.SizeInMiB)
	}
	root := aws.ToString(inst.RootDeviceName)
	for _, bdm := range inst.BlockDeviceMappings {
		if bdm.Ebs == nil || bdm.Ebs.VolumeId == nil || (root != "" && aws.ToString(bdm.DeviceName) != root && len(inst.BlockDeviceMappings) > 1) {
			continue
		}
		out, err := s.opts.EC2.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{*bdm.Ebs.VolumeId}})
		if err == nil && len(out.Volumes) > 0 && aws.ToInt32(out.Volumes[0].Size) > 0 {
			hw.RootVolumeGiB = int64(aws.ToInt32(out.Volumes[0].Size))
		}
		break
	}
	return hw, nil
}

// InstanceType describes an instance type, cached.
func (s *Simulator) InstanceType(ctx context.Context, name string) (ec2types.InstanceTypeInfo, error) {
	s.mu.Lock()
	it, ok := s.types[name]
	s.mu.Unlock()
	if ok {
		return it, nil
	}
	out, err := s.opts.EC2.DescribeInstanceTypes(ctx, &ec2.DescribeInstanceTypesInput{InstanceTypes: []ec2types.InstanceType{ec2types.InstanceType(name)}})
	if err != nil {
		return it, fmt.Errorf("describing instance type %s: %w", name, err)
	}
	if len(out.InstanceTypes) == 0 {
		return it, fmt.Errorf("unknown instance type %s", name)
	}
	s.mu.Lock()
	s.types[name] = out.InstanceTypes[0]
	s.mu.Unlock()
	return out.InstanceTypes[0], nil
}
