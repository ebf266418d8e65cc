package manifests

import (
	"encoding/json"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/fleet-scheduler/fleet-scheduler/provision/bootstrap"
	"github.com/fleet-scheduler/fleet-scheduler/provision/catalog"
	"github.com/fleet-scheduler/fleet-scheduler/provision/ec2"
	"github.com/fleet-scheduler/fleet-scheduler/provision/instanceprofile"
	"github.com/fleet-scheduler/fleet-scheduler/provision/interruption"
	"github.com/fleet-scheduler/fleet-scheduler/provision/pricing"
	"github.com/fleet-scheduler/fleet-scheduler/test/env"
)

const policyFile = "manifests/iam/policy.json"

// policyPlaceholders are the values manifests/iam/README.md says to fill in.
var policyPlaceholders = map[string]string{
	"AWS_REGION":               "ap-northeast-2",
	"AWS_ACCOUNT_ID":           "123456789012",
	"CLUSTER_NAME":             "sesacthon-dev",
	"NODE_ROLE_NAME":           "KarpenterNodeRole-sesacthon-dev",
	"BOOTSTRAP_PARAMETER_PATH": "/sesacthon/dev/karpenter",
	"INTERRUPTION_QUEUE_NAME":  "sesacthon-dev",
}

type policyDocument struct {
	Version   string
	Statement []statement
}

type statement struct {
	Sid       string
	Effect    string
	Action    stringList
	NotAction stringList
	Resource  stringList
	Condition map[string]map[string]stringList
}

// stringList is IAM's "a string or a list of strings".
type stringList []string

func (s *stringList) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*s = stringList{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return err
	}
	*s = many
	return nil
}

// impliedActions are authorized by AWS on the caller's behalf rather than
// called: an EC2 Fleet launches with the caller's RunInstances permission,
// tags at creation need CreateTags (TagInstanceProfile for a profile), an
// instance profile needs PassRole.
var impliedActions = []string{"ec2:RunInstances", "ec2:CreateTags", "iam:PassRole", "iam:TagInstanceProfile"}

// codeActions are the AWS actions the code can call: every method of the
// interfaces its AWS clients are used through.
func codeActions() []string {
	set := map[string]bool{}
	for prefix, ifaces := range map[string][]reflect.Type{
		"ec2": {
			reflect.TypeFor[ec2.EC2API](),
			reflect.TypeFor[catalog.EC2API](),
			reflect.TypeFor[pricing.SpotPriceAPI](),
		},
		"ssm": {
			reflect.TypeFor[ec2.SSMAPI](),
			reflect.TypeFor[bootstrap.SSMGetParameterAPI](),
		},
		"iam": {
			reflect.TypeFor[instanceprofile.IAMAPI](),
		},
		"sqs": {
			reflect.TypeFor[interruption.SQSAPI](),
		},
	} {
		for _, it := range ifaces {
			for i := range it.NumMethod() {
				set[prefix+":"+it.Method(i).Name] = true
			}
		}
	}
	var out []string
	for a := range set {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}

func readPolicy(t *testing.T, substitute bool) ([]byte, policyDocument) {
	t.Helper()
	raw := readRepoFile(t, policyFile)
	if substitute {
		s := string(raw)
		for k, v := range policyPlaceholders {
			s = strings.ReplaceAll(s, "${"+k+"}", v)
		}
		raw = []byte(s)
	}
	var doc policyDocument
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("%s is not a valid policy document: %v", policyFile, err)
	}
	return raw, doc
}

func TestIAMPolicy(t *testing.T) {
	raw, doc := readPolicy(t, false)
	if !json.Valid(raw) {
		t.Fatal("not valid JSON")
	}
	if doc.Version != "2012-10-17" {
		t.Errorf("Version %q, want 2012-10-17", doc.Version)
	}
	placeholders := map[string]bool{}
	for _, m := range regexp.MustCompile(`\$\{([^}]*)\}`).FindAllStringSubmatch(string(raw), -1) {
		placeholders[m[1]] = true
	}
	for p := range placeholders {
		if _, ok := policyPlaceholders[p]; !ok {
			t.Errorf("placeholder ${%s} is not documented in manifests/iam/README.md's list", p)
		}
	}

	granted := map[string]bool{}
	sids := map[string]bool{}
	for _, st := range doc.Statement {
		if st.Sid == "" || sids[st.Sid] {
			t.Errorf("statement %+v: want a unique Sid", st)
		}
		sids[st.Sid] = true
		if st.Effect != "Allow" || len(st.NotAction) > 0 || len(st.Action) == 0 || len(st.Resource) == 0 {
			t.Errorf("%s: want Effect Allow with explicit Action and Resource lists", st.Sid)
		}
		for _, a := range st.Action {
			if strings.Contains(a, "*") {
				t.Errorf(`%s: "Action": %q is a wildcard`, st.Sid, a)
			}
			granted[a] = true
			readOnly := strings.HasPrefix(a, "ec2:Describe")
			if !readOnly && slices.Contains(st.Resource, "*") {
				t.Errorf("%s: %s on Resource \"*\"", st.Sid, a)
			}
			if readOnly && len(st.Condition) == 0 {
				t.Errorf("%s: %s is not scoped to the region", st.Sid, a)
			}
		}
		for _, r := range st.Resource {
			if r == "*" && !slices.ContainsFunc(st.Action, func(a string) bool { return strings.HasPrefix(a, "ec2:Describe") }) {
				t.Errorf("%s: Resource \"*\" for %v", st.Sid, st.Action)
			}
		}
		// The tag conditions that keep this cluster's controller off every
		// other instance and template in the account.
		for _, a := range st.Action {
			switch a {
			case "ec2:TerminateInstances", "ec2:DeleteLaunchTemplate":
				requireTagCondition(t, st, "aws:ResourceTag")
			case "ec2:CreateLaunchTemplate", "ec2:CreateTags":
				requireTagCondition(t, st, "aws:RequestTag")
			}
		}
		if slices.Contains(st.Action, "ec2:CreateTags") && !slices.Contains(st.Condition["StringEquals"]["ec2:CreateAction"], "CreateFleet") {
			t.Errorf("%s: CreateTags is not limited to tagging on create (ec2:CreateAction)", st.Sid)
		}
		// The interruption queue's messages are the controller's alone: its
		// calls name that one queue.
		if slices.ContainsFunc(st.Action, func(a string) bool { return strings.HasPrefix(a, "sqs:") }) &&
			!slices.Equal(st.Resource, []string{"arn:aws:sqs:${AWS_REGION}:${AWS_ACCOUNT_ID}:${INTERRUPTION_QUEUE_NAME}"}) {
			t.Errorf("%s: SQS actions on %v, want the interruption queue only", st.Sid, st.Resource)
		}
		if slices.Contains(st.Action, "iam:PassRole") && (slices.ContainsFunc(st.Resource, func(r string) bool { return strings.Contains(r, "*") }) ||
			!slices.Contains(st.Condition["StringEquals"]["iam:PassedToService"], "ec2.amazonaws.com")) {
			t.Errorf("%s: PassRole must name the node role and pass it only to EC2", st.Sid)
		}
	}

	// Exactly what the code calls: a new client method fails here until the
	// policy allows it, and nothing is granted that no code calls.
	want := append(codeActions(), impliedActions...)
	sort.Strings(want)
	var got []string
	for a := range granted {
		got = append(got, a)
	}
	sort.Strings(got)
	if !slices.Equal(got, want) {
		t.Errorf("policy actions differ from the code's AWS calls:\n got %v\nwant %v", got, want)
	}
}

func requireTagCondition(t *testing.T, st statement, key string) {
	t.Helper()
	cluster := st.Condition["StringEquals"][key+"/kubernetes.io/cluster/${CLUSTER_NAME}"]
	pool := st.Condition["StringLike"][key+"/karpenter.sh/nodepool"]
	if !slices.Equal(cluster, []string{"owned"}) || !slices.Equal(pool, []string{"*"}) {
		t.Errorf("%s: %v must require %s/kubernetes.io/cluster/${CLUSTER_NAME}=owned and %s/karpenter.sh/nodepool", st.Sid, st.Action, key, key)
	}
}

// TestAWSServices: the code talks to EC2, SSM, IAM and SQS only. A client for another
// service (the Pricing API, say) needs its actions in the policy and its
// interface in codeActions.
func TestAWSServices(t *testing.T) {
	allowed := []string{"ec2", "ssm", "iam", "sqs"}
	root := env.RepoRoot()
	for _, dir := range []string{"cmd", "plugins", "provision"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
			if err != nil {
				return err
			}
			for _, imp := range f.Imports {
				p, _ := strconv.Unquote(imp.Path.Value)
				svc, ok := strings.CutPrefix(p, "github.com/aws/aws-sdk-go-v2/service/")
				if !ok {
					continue
				}
				svc, _, _ = strings.Cut(svc, "/")
				if !slices.Contains(allowed, svc) && !strings.Contains(path, "/internal/") {
					rel, _ := filepath.Rel(root, path)
					t.Errorf("%s imports the AWS %s client: add its actions to %s and its interface to codeActions", rel, svc, policyFile)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestIAMPolicyAcceptedByIAM submits the filled-in policy to moto's IAM,
// which runs AWS's policy grammar checks (MalformedPolicyDocument).
func TestIAMPolicyAcceptedByIAM(t *testing.T) {
	awsCLI, err := exec.LookPath("aws")
	if err != nil {
		t.Skipf("the aws CLI is not on PATH: %v", err)
	}
	raw, _ := readPolicy(t, true)
	if strings.Contains(string(raw), "${") {
		t.Fatalf("placeholders left after filling in: %s", regexp.MustCompile(`\$\{[^}]*\}`).FindAllString(string(raw), -1))
	}
	file := filepath.Join(t.TempDir(), "policy.json")
	if err := os.WriteFile(file, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	m := env.StartMotoT(t)
	cmd := exec.Command(awsCLI, "--endpoint-url", m.Endpoint, "--region", m.Region, "--output", "json",
		"iam", "create-policy", "--policy-name", "FleetSchedulerController-sesacthon-dev", "--policy-document", "file://"+file)
	cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID=testing", "AWS_SECRET_ACCESS_KEY=testing", "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("IAM rejects the policy: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), `"PolicyName": "FleetSchedulerController-sesacthon-dev"`) {
		t.Fatalf("unexpected answer: %s", out)
	}
}
