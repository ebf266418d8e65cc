package keda

import (
	"context"
	"fmt"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
	aggregator "k8s.io/kube-aggregator/pkg/client/clientset_generated/clientset"
	"k8s.io/utils/ptr"

	"github.com/fleet-scheduler/fleet-scheduler/hack/sandbox/seed"
)

// KEDA's names, as its release manifests give them.
const (
	Namespace      = "keda"
	ServiceAccount = "keda-operator"
	// OperatorService is the operator's Service name (its gRPC metrics
	// service); MetricsService the metrics server's.
	OperatorService = "keda-operator"
	MetricsService  = "keda-metrics-apiserver"
	// APIService serves external.metrics.k8s.io.
	APIService = "v1beta1.external.metrics.k8s.io"
)

// moduleManifests are the files of KEDA's config/ that the sandbox applies
// as they are: the namespace, the CRDs, the ServiceAccount, the operator's
// RBAC and the metrics server's (auth delegation, the extension API server
// authentication reader, and external metrics for the HPA controller).
// Not applied: the Deployments, Services and APIService (the sandbox runs
// the programs itself and registers them below), the admission webhooks
// (not run), and the CRDs' kustomize patches, which only tighten validation.
var moduleManifests = []string{
	"config/general/namespace.yaml",
	"config/service_account/service_account.yaml",
	"config/rbac/role.yaml",
	"config/rbac/role_binding.yaml",
	"config/metrics-server/role.yaml",
	"config/metrics-server/role_binding.yaml",
}

// applyModuleManifests creates KEDA's CRDs (waiting until they are
// Established) and its namespace, ServiceAccount and RBAC; it returns
// the number of CRDs.
func applyModuleManifests(ctx context.Context, a *seed.Applier, mod Module) (int, error) {
	crdFiles, err := seed.Glob(filepath.Join(mod.Dir, "config", "crd", "bases"))
	if err != nil {
		return 0, err
	}
	if len(crdFiles) == 0 {
		return 0, fmt.Errorf("no CRDs in %s/config/crd/bases", mod.Dir)
	}
	crds, err := seed.ReadManifests(crdFiles...)
	if err != nil {
		return 0, err
	}
	if err := a.CRDs(ctx, crds); err != nil {
		return 0, err
	}
	paths := make([]string, len(moduleManifests))
	for i, f := range moduleManifests {
		paths[i] = filepath.Join(mod.Dir, f)
	}
	objs, err := seed.ReadManifests(paths...)
	if err != nil {
		return 0, err
	}
	return len(crds), a.Create(ctx, objs)
}

// register makes the metrics server reachable as an aggregated API: a
// Service without selector (no pod backs it), an EndpointSlice with the
// address of the host the process runs on and the port it serves on, and
// the APIService with KEDA's CA as its caBundle. The API server's
// --enable-aggregator-routing sends requests to the endpoint's address
// (there is no kube-proxy for the Service's cluster IP), through the
// egress proxy, which forwards that address to the process.
func register(ctx context.Context, client kubernetes.Interface, agg aggregator.Interface, hostIP, nodeName string, port int32, caBundle []byte) error {
	labels := map[string]string{"app.kubernetes.io/name": MetricsService, "app.kubernetes.io/part-of": "keda-operator"}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: MetricsService, Namespace: Namespace, Labels: labels},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{
			Name: "https", Port: 443, TargetPort: intstr.FromInt32(port), Protocol: corev1.ProtocolTCP,
		}}},
	}
	if _, err := client.CoreV1().Services(Namespace).Create(ctx, svc, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating Service %s/%s: %w", Namespace, MetricsService, err)
	}
	sliceLabels := map[string]string{discoveryv1.LabelServiceName: MetricsService, discoveryv1.LabelManagedBy: "sandbox"}
	for k, v := range labels {
		sliceLabels[k] = v
	}
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: MetricsService, Namespace: Namespace, Labels: sliceLabels},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{{
			Addresses: []string{hostIP}, NodeName: ptr.To(nodeName),
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)},
		}},
		Ports: []discoveryv1.EndpointPort{{Name: ptr.To("https"), Port: ptr.To(port), Protocol: ptr.To(corev1.ProtocolTCP)}},
	}
	if _, err := client.DiscoveryV1().EndpointSlices(Namespace).Create(ctx, slice, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating EndpointSlice %s/%s: %w", Namespace, MetricsService, err)
	}
	apisvc := &apiregistrationv1.APIService{
		ObjectMeta: metav1.ObjectMeta{Name: APIService, Labels: map[string]string{"app.kubernetes.io/part-of": "keda-operator"}},
		Spec: apiregistrationv1.APIServiceSpec{
			Service:              &apiregistrationv1.ServiceReference{Namespace: Namespace, Name: MetricsService, Port: ptr.To[int32](443)},
			Group:                "external.metrics.k8s.io",
			Version:              "v1beta1",
			CABundle:             caBundle,
			GroupPriorityMinimum: 100,
			VersionPriority:      100,
		},
	}
	if _, err := agg.ApiregistrationV1().APIServices().Create(ctx, apisvc, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating APIService %s: %w", APIService, err)
	}
	return nil
}

// available reports the APIService's Available condition.
func available(ctx context.Context, agg aggregator.Interface) (bool, string, error) {
	s, err := agg.ApiregistrationV1().APIServices().Get(ctx, APIService, metav1.GetOptions{})
	if err != nil {
		return false, "", err
	}
	for _, c := range s.Status.Conditions {
		if c.Type == apiregistrationv1.Available {
			return c.Status == apiregistrationv1.ConditionTrue, c.Reason + ": " + c.Message, nil
		}
	}
	return false, "no Available condition yet", nil
}
