package env

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/fleet-scheduler/fleet-scheduler/hack/motoserver"
)

// Moto is a moto_server process serving the EC2 and SSM APIs on loopback.
type Moto struct {
	Endpoint string
	Region   string
	cmd      *exec.Cmd
	done     chan struct{} // closed when the process has exited
	waitErr  error
}

// StartMoto starts moto_server on a loopback port this process binds and
// hands over, and waits until it answers.
func StartMoto(region string) (*Moto, error) {
	bin, err := motoserver.Binary()
	if err != nil {
		return nil, err
	}
	sock, err := motoserver.Listen()
	if err != nil {
		return nil, err
	}
	defer sock.Close()
	cmd := exec.Command(bin, sock.Args()...)
	cmd.Env = append(os.Environ(), sock.Env()...)
	cmd.ExtraFiles = []*os.File{sock.File()}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting moto_server: %w", err)
	}
	sock.Close()
	m := &Moto{Endpoint: sock.Endpoint, Region: region, cmd: cmd, done: make(chan struct{})}
	go func() { m.waitErr = cmd.Wait(); close(m.done) }()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err = motoserver.WaitReady(ctx, m.Endpoint, func() error {
		select {
		case <-m.done:
			if m.waitErr == nil {
				return fmt.Errorf("exit status 0")
			}
			return m.waitErr
		default:
			return nil
		}
	})
	if err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

// StartMotoT starts moto_server for one test and stops it when the test ends.
func StartMotoT(t testing.TB) *Moto {
	t.Helper()
	m, err := StartMoto("us-east-1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

// RunWithMoto is a TestMain that shares one moto_server among a package's
// tests: it starts it into *moto, runs the tests and stops it, and returns
// the exit code.
func RunWithMoto(m *testing.M, moto **Moto) int {
	var err error
	if *moto, err = StartMoto("us-east-1"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer (*moto).Close()
	return m.Run()
}

// AWSConfig returns an SDK configuration that sends every call to this server.
func (m *Moto) AWSConfig() aws.Config {
	return aws.Config{
		Region:           m.Region,
		Credentials:      credentials.NewStaticCredentialsProvider("testing", "testing", ""),
		BaseEndpoint:     aws.String(m.Endpoint),
		RetryMaxAttempts: 3,
	}
}

// UnreachableAWSConfig is AWSConfig pointed at a port nothing listens on,
// tried once: every call fails at once, as when AWS does not answer.
func (m *Moto) UnreachableAWSConfig() aws.Config {
	cfg := m.AWSConfig()
	cfg.BaseEndpoint = aws.String("http://127.0.0.1:1")
	cfg.RetryMaxAttempts = 1
	return cfg
}

// Env points the AWS SDK at this server, with static test credentials and
// no instance metadata: KEY=VALUE pairs for a process's environment.
func (m *Moto) Env() []string {
	return []string{
		"AWS_ENDPOINT_URL=" + m.Endpoint, "AWS_REGION=" + m.Region, "AWS_ACCESS_KEY_ID=testing",
		"AWS_SECRET_ACCESS_KEY=testing", "AWS_EC2_METADATA_DISABLED=true",
	}
}

// SetEnv sets Env in this process for one test (t.Setenv: t must not be
// parallel).
func (m *Moto) SetEnv(t testing.TB) {
	t.Helper()
	for _, kv := range m.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
}

// Reset drops every resource moto holds.
func (m *Moto) Reset(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.Endpoint+"/moto-api/reset", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// Close stops the server and its process group.
func (m *Moto) Close() {
	_ = syscall.Kill(-m.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-m.done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-m.cmd.Process.Pid, syscall.SIGKILL)
		<-m.done
	}
}
