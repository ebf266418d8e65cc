package env

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// MotoInstallHint is printed wherever moto_server is missing.
const MotoInstallHint = "moto_server not found on PATH or in ~/.pyenv/shims; install it with: pip install 'moto[server]'"

// Moto is a moto_server process serving the EC2 and SSM APIs on loopback.
type Moto struct {
	Endpoint string
	Region   string
	cmd      *exec.Cmd
}

// MotoBinary finds moto_server on PATH or in the pyenv shims directory.
func MotoBinary() (string, error) {
	if p, err := exec.LookPath("moto_server"); err == nil {
		return p, nil
	}
	if home, err := os.UserHomeDir(); err == nil {
		p := filepath.Join(home, ".pyenv", "shims", "moto_server")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s", MotoInstallHint)
}

// StartMoto starts moto_server on a free loopback port and waits until it answers.
func StartMoto(region string) (*Moto, error) {
	bin, err := MotoBinary()
	if err != nil {
		return nil, err
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "-H", "127.0.0.1", "-p", fmt.Sprint(port))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting moto_server: %w", err)
	}
	m := &Moto{Endpoint: fmt.Sprintf("http://127.0.0.1:%d", port), Region: region, cmd: cmd}
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(m.Endpoint + "/moto-api/")
		if err == nil {
			resp.Body.Close()
			return m, nil
		}
		if time.Now().After(deadline) {
			m.Close()
			return nil, fmt.Errorf("moto_server on %s did not answer within 60s: %w", m.Endpoint, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
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

// AWSConfig returns an SDK configuration that sends every call to this server.
func (m *Moto) AWSConfig() aws.Config {
	return aws.Config{
		Region:           m.Region,
		Credentials:      credentials.NewStaticCredentialsProvider("testing", "testing", ""),
		BaseEndpoint:     aws.String(m.Endpoint),
		RetryMaxAttempts: 3,
	}
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
	if m.cmd.Process != nil {
		_ = syscall.Kill(-m.cmd.Process.Pid, syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = m.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-m.cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	}
}
