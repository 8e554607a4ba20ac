// Package awstest runs what the AWS provider's tests need on this machine: a moto server (a real
// AWS API) and Terraform with the hashicorp/aws provider from the local filesystem mirror. It is
// imported by tests only.
package awstest

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/sparkplane/sparkplane/internal/daemon"
	sparkaws "github.com/sparkplane/sparkplane/internal/provider/aws"
	"github.com/sparkplane/sparkplane/internal/testutil"
)

// Region is the region every test uses.
const Region = "eu-west-1"

// PluginMirror is where the machine image keeps the hashicorp/aws provider (TESTBED.md).
const PluginMirror = "/opt/tf-plugins"

// Moto is a running moto server, behind a front of the test's that records every AWS API call
// and plays the one action moto lacks that sparkplane uses: CompleteLifecycleAction.
type Moto struct {
	URL     string // the front; everything talks to this
	Backend string // moto itself

	mu        sync.Mutex
	calls     []string
	completed []string // instance ids whose lifecycle action was completed
}

// front proxies to moto, noting each call's service and action.
func (m *Moto) front(backend *url.URL) http.Handler {
	proxy := httputil.NewSingleHostReverseProxy(backend)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		action := r.Header.Get("X-Amz-Target") // JSON protocols: SSM, ...
		if ct := r.Header.Get("Content-Type"); action == "" && strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			form, _ := url.ParseQuery(string(body))
			action = form.Get("Action")
			if action == "CompleteLifecycleAction" {
				m.mu.Lock()
				m.calls = append(m.calls, "autoscaling:"+action)
				m.completed = append(m.completed, form.Get("InstanceId"))
				m.mu.Unlock()
				w.Header().Set("Content-Type", "text/xml")
				fmt.Fprint(w, `<CompleteLifecycleActionResponse xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/"><CompleteLifecycleActionResult/><ResponseMetadata><RequestId>awstest</RequestId></ResponseMetadata></CompleteLifecycleActionResponse>`)
				return
			}
		}
		if action == "" {
			action = r.Method + " " + r.URL.Path // S3's REST API
		}
		if !strings.HasPrefix(r.URL.Path, "/moto-api") {
			m.mu.Lock()
			m.calls = append(m.calls, service(r)+":"+action)
			m.mu.Unlock()
		}
		proxy.ServeHTTP(w, r)
	})
}

// service is the signing name in a request's Authorization header (ec2, autoscaling, s3, ...).
func service(r *http.Request) string {
	auth := r.Header.Get("Authorization")
	if i := strings.Index(auth, "Credential="); i >= 0 {
		parts := strings.Split(strings.SplitN(auth[i+len("Credential="):], ",", 2)[0], "/")
		if len(parts) >= 4 {
			return parts[3]
		}
	}
	return "?"
}

// Calls returns the AWS API calls made since the last ResetCalls, as service:Action.
func (m *Moto) Calls() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.calls...)
}

// ResetCalls forgets the calls recorded so far.
func (m *Moto) ResetCalls() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls = nil
}

// Completed returns the instances whose termination lifecycle action was completed.
func (m *Moto) Completed() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.completed...)
}

// StartMoto starts moto_server on a free loopback port for the test and stops it afterwards.
func StartMoto(t testing.TB) *Moto {
	t.Helper()
	bin := testutil.Tool(t, "moto_server", "it is on the machine image; see TESTBED.md")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	// Waited on as a process: it answers, or it has exited (and its log says why); the bound is
	// generous, since on a loaded machine moto takes far longer than its usual second.
	proc, err := daemon.Start("moto_server", exec.Command(bin, "-H", "127.0.0.1", "-p", fmt.Sprint(port)), filepath.Join(t.TempDir(), "moto.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proc.Stop(5 * time.Second) })
	m := &Moto{Backend: fmt.Sprintf("http://127.0.0.1:%d", port)}
	backend, _ := url.Parse(m.Backend)
	front := httptest.NewServer(m.front(backend))
	t.Cleanup(front.Close)
	m.URL = front.URL
	if err := proc.WaitHTTP(context.Background(), m.Backend+"/moto-api/", 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	return m
}

// Config is an SDK configuration for moto.
func (m *Moto) Config() aws.Config {
	return aws.Config{
		Region:       Region,
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
		BaseEndpoint: aws.String(m.URL),
	}
}

// Env is the environment that points the SDK (and the AWS CLI) at moto.
func (m *Moto) Env() []string {
	return []string{"AWS_ENDPOINT_URL=" + m.URL, "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test",
		"AWS_REGION=" + Region, "AWS_DEFAULT_REGION=" + Region, "AWS_EC2_METADATA_DISABLED=true"}
}

// Reset empties moto.
func (m *Moto) Reset(ctx context.Context) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, m.URL+"/moto-api/reset", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	return resp.Body.Close()
}

// Terraform returns the terraform binary and points TF_CLI_CONFIG_FILE, for the whole test
// process, at a configuration that installs providers from the machine's filesystem mirror
// only. It sets the variable once rather than per test (t.Setenv), so that tests against moto
// can run in parallel; every test wants the same value.
func Terraform(t testing.TB) string {
	t.Helper()
	bin := testutil.Tool(t, "terraform", "it is on the machine image; see TESTBED.md")
	if _, err := os.Stat(filepath.Join(PluginMirror, "registry.terraform.io", "hashicorp", "aws")); err != nil {
		if os.Getenv(testutil.RequireToolsEnv) == "1" {
			t.Fatalf("no hashicorp/aws provider in %s: %v", PluginMirror, err)
		}
		t.Skipf("no hashicorp/aws provider in %s", PluginMirror)
	}
	terraformRC.once.Do(func() {
		cfg := filepath.Join(os.TempDir(), fmt.Sprintf("sparkplane-test-terraformrc-%d", os.Getuid()))
		terraformRC.err = os.WriteFile(cfg, []byte(fmt.Sprintf(`provider_installation {
  filesystem_mirror {
    path    = %q
    include = ["registry.terraform.io/*/*"]
  }
  direct {
    exclude = ["registry.terraform.io/*/*"]
  }
}
`, PluginMirror)), 0o644)
		if terraformRC.err == nil {
			terraformRC.err = os.Setenv("TF_CLI_CONFIG_FILE", cfg)
		}
	})
	if terraformRC.err != nil {
		t.Fatal(terraformRC.err)
	}
	UseTestCredentials()
	return bin
}

var terraformRC struct {
	once sync.Once
	err  error
}

// UseTestCredentials sets, for the whole test process, the AWS credentials moto accepts, which
// Terraform and the SDK read from the environment.
func UseTestCredentials() {
	os.Setenv("AWS_ACCESS_KEY_ID", "test")
	os.Setenv("AWS_SECRET_ACCESS_KEY", "test")
}

// Remains lists what AWS still has of a cluster (see aws.Remains), with its CloudWatch alarms.
func Remains(ctx context.Context, t testing.TB, cfg aws.Config, cluster string) []string {
	t.Helper()
	left, err := sparkaws.Remains(ctx, cfg, cluster)
	if err != nil {
		t.Fatalf("list what remains: %v", err)
	}
	alarms, err := Alarms(ctx, aws.ToString(cfg.BaseEndpoint), "sparkplane-"+cluster+"-")
	if err != nil {
		t.Fatalf("list what remains: %v", err)
	}
	for _, a := range alarms {
		left = append(left, "alarm "+a.AlarmName)
	}
	return left
}

// Alarm is a CloudWatch metric alarm as DescribeAlarms returns it.
type Alarm struct {
	AlarmName          string
	MetricName         string
	Namespace          string
	Statistic          string
	ComparisonOperator string
	Threshold          float64
	Period             int
	EvaluationPeriods  int
	AlarmActions       []string `xml:"AlarmActions>member"`
}

// Alarms lists the metric alarms whose names start with prefix, through CloudWatch's query
// protocol. (The Go SDK speaks CloudWatch's newer CBOR protocol, which moto 5.2 does not; the
// product itself never calls CloudWatch.)
func Alarms(ctx context.Context, endpoint, prefix string) ([]Alarm, error) {
	form := url.Values{"Action": {"DescribeAlarms"}, "Version": {"2010-08-01"}, "AlarmNamePrefix": {prefix}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, endpoint+"/", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=test/20260101/"+Region+"/monitoring/aws4_request, SignedHeaders=host, Signature=0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out struct {
		Alarms []Alarm `xml:"DescribeAlarmsResult>MetricAlarms>member"`
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("DescribeAlarms: HTTP %d", resp.StatusCode)
	}
	return out.Alarms, xml.NewDecoder(resp.Body).Decode(&out)
}
