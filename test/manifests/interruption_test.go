package manifests

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/fleet-scheduler/fleet-scheduler/provision/interruption/messages"
	"github.com/fleet-scheduler/fleet-scheduler/test/env"
)

const interruptionDir = "manifests/interruption"

// interruptionRules are the EventBridge rules every installer makes, by
// name suffix, with the events the controller parses (its own constants:
// a rule that sends what the parser does not know fails here).
var interruptionRules = map[string]struct{ source, detailType string }{
	"spot-interruption":     {messages.SourceEC2, messages.DetailTypeSpotInterruption},
	"rebalance":             {messages.SourceEC2, messages.DetailTypeRebalance},
	"scheduled-change":      {messages.SourceHealth, messages.DetailTypeHealth},
	"instance-state-change": {messages.SourceEC2, messages.DetailTypeStateChange},
}

// TestInterruptionQueueCloudFormation creates the template's stack in
// moto's CloudFormation and checks what it made by sending events through
// moto's EventBridge.
func TestInterruptionQueueCloudFormation(t *testing.T) {
	cli := awsCLI(t)
	m := env.StartMotoT(t)
	const cluster = "cfn-dev"
	template := filepath.Join(env.RepoRoot(), interruptionDir, "cloudformation.yaml")
	cli.run(t, m, "cloudformation", "create-stack", "--stack-name", "fleet-scheduler-interruption",
		"--template-body", "file://"+template, "--parameters", "ParameterKey=ClusterName,ParameterValue="+cluster)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		status := strings.TrimSpace(cli.run(t, m, "cloudformation", "describe-stacks", "--stack-name", "fleet-scheduler-interruption",
			"--query", "Stacks[0].StackStatus", "--output", "text"))
		if status == "CREATE_COMPLETE" {
			break
		}
		if strings.HasSuffix(status, "FAILED") || strings.Contains(status, "ROLLBACK") || time.Now().After(deadline) {
			t.Fatalf("stack status %s", status)
		}
	}
	checkInterruptionQueue(t, cli, m, cluster)

	// moto makes an AWS::SQS::QueuePolicy without applying it: read the
	// template's own.
	raw, err := os.ReadFile(template)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Resources map[string]struct {
			Type       string
			Properties struct{ PolicyDocument json.RawMessage }
		}
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	policy := doc.Resources["InterruptionQueuePolicy"]
	if policy.Type != "AWS::SQS::QueuePolicy" {
		t.Fatalf("no InterruptionQueuePolicy in the template")
	}
	// !GetAtt InterruptionQueue.Arn reads as its argument here.
	checkQueuePolicy(t, string(policy.Properties.PolicyDocument), "InterruptionQueue.Arn")
}

// TestInterruptionQueueScript runs create-queue.sh against moto. (Running
// it again is safe by the calls it makes: create-queue with the same
// attributes, put-rule and put-targets answer with what exists. Each aws CLI
// call costs a second or two here, so it runs once.)
func TestInterruptionQueueScript(t *testing.T) {
	cli := awsCLI(t)
	m := env.StartMotoT(t)
	const cluster = "script-dev"
	cmd := exec.Command(filepath.Join(env.RepoRoot(), interruptionDir, "create-queue.sh"), cluster)
	cmd.Env = append(os.Environ(), cli.env(m)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("create-queue.sh: %v\n%s", err, out)
	}
	checkInterruptionQueue(t, cli, m, cluster)
	url := strings.TrimSpace(cli.run(t, m, "sqs", "get-queue-url", "--queue-name", cluster, "--query", "QueueUrl", "--output", "text"))
	policy := cli.run(t, m, "sqs", "get-queue-attributes", "--queue-url", url, "--attribute-names", "Policy", "--query", "Attributes.Policy", "--output", "text")
	checkQueuePolicy(t, policy, "arn:aws:sqs:"+m.Region+":123456789012:"+cluster)
}

// TestInterruptionQueueTerraform plans the Terraform example with the AWS
// provider (offline, from the machine's plugin mirror) and checks the plan
// makes the same queue and rules. Applying it against moto works too but
// takes a minute: the provider waits for SQS attributes to settle.
func TestInterruptionQueueTerraform(t *testing.T) {
	tf, err := exec.LookPath("terraform")
	if err != nil {
		t.Skipf("terraform is not on PATH: %v", err)
	}
	const pluginDir = "/opt/tf-plugins"
	if _, err := os.Stat(filepath.Join(pluginDir, "registry.terraform.io", "hashicorp", "aws")); err != nil {
		t.Skipf("no hashicorp/aws provider in %s (terraform init cannot download one here): %v", pluginDir, err)
	}
	dir := t.TempDir()
	src := readRepoFile(t, interruptionDir, "terraform", "main.tf")
	// A caller of the module: its provider, pointed nowhere (plan calls no API).
	root := `module "interruption" {
  source       = "./module"
  cluster_name = "tf-dev"
}
provider "aws" {
  region                      = "us-east-1"
  access_key                  = "testing"
  secret_key                  = "testing"
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  skip_requesting_account_id  = true
}
`
	for name, body := range map[string][]byte{"module/main.tf": src, "main.tf": []byte(root)} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), body, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run := func(args ...string) string {
		cmd := exec.Command(tf, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "TF_IN_AUTOMATION=1", "CHECKPOINT_DISABLE=1", "TF_CLI_CONFIG_FILE=/dev/null")
		return commandOutput(t, cmd, "terraform", args)
	}
	run("init", "-input=false", "-no-color", "-plugin-dir="+pluginDir)
	run("validate", "-no-color")
	run("plan", "-input=false", "-no-color", "-refresh=false", "-out=plan")
	var plan struct {
		PlannedValues struct {
			RootModule struct {
				ChildModules []struct {
					Resources []struct {
						Type   string
						Values map[string]any
					}
				} `json:"child_modules"`
			} `json:"root_module"`
		} `json:"planned_values"`
	}
	if err := json.Unmarshal([]byte(run("show", "-json", "plan")), &plan); err != nil {
		t.Fatal(err)
	}
	rules := map[string]string{}
	var queue map[string]any
	targets := 0
	for _, mod := range plan.PlannedValues.RootModule.ChildModules {
		for _, r := range mod.Resources {
			switch r.Type {
			case "aws_sqs_queue":
				queue = r.Values
			case "aws_cloudwatch_event_rule":
				rules[fmt.Sprint(r.Values["name"])] = fmt.Sprint(r.Values["event_pattern"])
			case "aws_cloudwatch_event_target":
				targets++
			}
		}
	}
	if queue["name"] != "tf-dev" || queue["message_retention_seconds"] != float64(300) || queue["sqs_managed_sse_enabled"] != true {
		t.Errorf("planned queue %v", queue)
	}
	checkRules(t, "tf-dev", rules)
	if targets != len(interruptionRules) {
		t.Errorf("%d event targets planned, want one per rule", targets)
	}
}

// checkInterruptionQueue: the queue, its settings, the four rules each
// targeting it, and, through EventBridge, that each kind of event the
// controller handles reaches the queue and parses, while another does not.
func checkInterruptionQueue(t *testing.T, cli awsRunner, m *env.Moto, cluster string) {
	t.Helper()
	url := strings.TrimSpace(cli.run(t, m, "sqs", "get-queue-url", "--queue-name", cluster, "--query", "QueueUrl", "--output", "text"))
	var attrs map[string]string
	decodeJSON(t, cli.run(t, m, "sqs", "get-queue-attributes", "--queue-url", url, "--attribute-names", "All", "--query", "Attributes", "--output", "json"), &attrs)
	if attrs["MessageRetentionPeriod"] != "300" || attrs["SqsManagedSseEnabled"] != "true" {
		t.Errorf("queue attributes %v: want 300s retention and SSE", attrs)
	}
	arn := attrs["QueueArn"]

	var listed []struct{ Name, EventPattern string }
	decodeJSON(t, cli.run(t, m, "events", "list-rules", "--name-prefix", cluster+"-", "--query", "Rules", "--output", "json"), &listed)
	rules := map[string]string{}
	for _, r := range listed {
		rules[r.Name] = r.EventPattern
		var targets []struct{ Arn string }
		decodeJSON(t, cli.run(t, m, "events", "list-targets-by-rule", "--rule", r.Name, "--query", "Targets", "--output", "json"), &targets)
		if len(targets) != 1 || targets[0].Arn != arn {
			t.Errorf("rule %s targets %v, want the queue %s", r.Name, targets, arn)
		}
	}
	checkRules(t, cluster, rules)

	const id = "i-1234567890abcdef0"
	arns := []string{"arn:aws:ec2:" + m.Region + ":123456789012:instance/" + id}
	type entry struct {
		Source     string
		DetailType string
		Detail     string
		Resources  []string
	}
	entries := []entry{
		{messages.SourceEC2, messages.DetailTypeSpotInterruption, `{"instance-id":"` + id + `","instance-action":"terminate"}`, arns},
		{messages.SourceEC2, messages.DetailTypeRebalance, `{"instance-id":"` + id + `"}`, arns},
		{messages.SourceHealth, messages.DetailTypeHealth, `{"service":"EC2","eventTypeCategory":"scheduledChange","eventTypeCode":"EC2_INSTANCE_RETIREMENT_SCHEDULED","affectedEntities":[{"entityValue":"` + id + `"}]}`, []string{id}},
		{messages.SourceEC2, messages.DetailTypeStateChange, `{"instance-id":"` + id + `","state":"shutting-down"}`, arns},
		// Not for the queue: no rule matches it.
		{messages.SourceEC2, "EC2 Spot Instance Request Fulfillment", `{"instance-id":"` + id + `"}`, arns},
	}
	raw, err := json.Marshal(entries)
	if err != nil {
		t.Fatal(err)
	}
	cli.run(t, m, "events", "put-events", "--entries", string(raw))
	var got []string
	for range 3 {
		var bodies []string
		decodeJSON(t, cli.run(t, m, "sqs", "receive-message", "--queue-url", url, "--max-number-of-messages", "10",
			"--query", "Messages[].Body", "--output", "json"), &bodies)
		for _, b := range bodies {
			msg, err := messages.Parse(b)
			if err != nil {
				t.Errorf("a message EventBridge delivered does not parse: %v\n%s", err, b)
				continue
			}
			got = append(got, string(msg.Kind))
			if !slices.Equal(msg.InstanceIDs, []string{id}) {
				t.Errorf("%s message names %v", msg.Kind, msg.InstanceIDs)
			}
		}
	}
	slices.Sort(got)
	want := []string{string(messages.InstanceTerminated), string(messages.RebalanceRecommendation), string(messages.ScheduledChange), string(messages.SpotInterruption)}
	if !slices.Equal(got, want) {
		t.Errorf("the queue received %v, want %v", got, want)
	}
}

// checkRules: exactly the four rules, each matching one source and detail type.
func checkRules(t *testing.T, cluster string, rules map[string]string) {
	t.Helper()
	if len(rules) != len(interruptionRules) {
		t.Errorf("rules %v, want %d", rules, len(interruptionRules))
	}
	for suffix, want := range interruptionRules {
		pattern, ok := rules[cluster+"-"+suffix]
		if !ok {
			t.Errorf("no rule %s-%s", cluster, suffix)
			continue
		}
		var got struct {
			Source     []string `json:"source"`
			DetailType []string `json:"detail-type"`
		}
		decodeJSON(t, pattern, &got)
		if !slices.Equal(got.Source, []string{want.source}) || !slices.Equal(got.DetailType, []string{want.detailType}) {
			t.Errorf("rule %s-%s matches %s, want source %s and detail-type %s", cluster, suffix, pattern, want.source, want.detailType)
		}
	}
}

// checkQueuePolicy: EventBridge may send to the queue and nothing may use it
// over plain HTTP.
func checkQueuePolicy(t *testing.T, policy, queueArn string) {
	t.Helper()
	var doc struct {
		Statement []struct {
			Effect    string
			Principal any
			Action    any
			Resource  string
			Condition map[string]map[string]any
		}
	}
	decodeJSON(t, policy, &doc)
	var allow, denyHTTP bool
	for _, s := range doc.Statement {
		principal, _ := json.Marshal(s.Principal)
		switch {
		case s.Effect == "Allow" && s.Action == "sqs:SendMessage" && s.Resource == queueArn && strings.Contains(string(principal), `"events.amazonaws.com"`):
			allow = true
		case s.Effect == "Deny" && s.Resource == queueArn && fmt.Sprint(s.Condition["Bool"]["aws:SecureTransport"]) == "false":
			denyHTTP = true
		}
	}
	if !allow || !denyHTTP {
		t.Errorf("queue policy %s: EventBridge may send %v, plain HTTP denied %v", policy, allow, denyHTTP)
	}
}

// awsRunner runs the aws CLI against a moto server.
type awsRunner struct{ path string }

func awsCLI(t *testing.T) awsRunner {
	t.Helper()
	p, err := exec.LookPath("aws")
	if err != nil {
		t.Skipf("the aws CLI is not on PATH: %v", err)
	}
	return awsRunner{p}
}

func (a awsRunner) env(m *env.Moto) []string {
	return []string{"AWS_ENDPOINT_URL=" + m.Endpoint, "AWS_DEFAULT_REGION=" + m.Region, "AWS_REGION=" + m.Region,
		"AWS_ACCESS_KEY_ID=testing", "AWS_SECRET_ACCESS_KEY=testing", "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null"}
}

func (a awsRunner) run(t *testing.T, m *env.Moto, args ...string) string {
	t.Helper()
	cmd := exec.Command(a.path, append([]string{"--endpoint-url", m.Endpoint}, args...)...)
	cmd.Env = append(os.Environ(), a.env(m)...)
	return commandOutput(t, cmd, "aws", args)
}

func decodeJSON(t *testing.T, s string, into any) {
	t.Helper()
	if err := json.Unmarshal([]byte(s), into); err != nil {
		t.Fatalf("%v: %s", err, s)
	}
}
