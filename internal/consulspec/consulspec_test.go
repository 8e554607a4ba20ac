package consulspec_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/hashicorp/consul/api"

	"github.com/sparkplane/sparkplane/internal/consulspec"
	"github.com/sparkplane/sparkplane/internal/spec"
	"github.com/sparkplane/sparkplane/internal/testutil"
)

func startConsul(t *testing.T, aclToken string) string { return testutil.StartConsul(t, aclToken) }

func kv(t *testing.T, addr, token string) *api.KV {
	t.Helper()
	c, err := api.NewClient(&api.Config{Address: addr, Token: token})
	if err != nil {
		t.Fatal(err)
	}
	return c.KV()
}

// A spec kept in Consul's KV store is read as strictly as a file, and its errors name the key:
// through the binary, `plan -f consul://HOST:PORT/KEY` plans the cluster the key holds, and a
// bad spec there gives the same positioned errors a file does. A missing key, a key Consul's
// ACLs refuse, and a relative storage path are refused with what to do.
func TestSpecsFromConsul(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a Consul agent")
	}
	addr := startConsul(t, "")
	store := kv(t, addr, "")
	good := "apiVersion: sparkplane.dev/v1alpha1\nkind: Cluster\nname: from-consul\nworkers:\n  count: 3\n"
	bad := "apiVersion: sparkplane.dev/v1alpha1\nkind: Cluster\nname: from-consul\nworkers:\n  count: three\n  colour: blue\n"
	for key, v := range map[string]string{"teams/analytics/good.yaml": good, "teams/analytics/bad.yaml": bad,
		"teams/analytics/relative.yaml": good + "storage:\n  path: logs\n"} {
		if _, err := store.Put(&api.KVPair{Key: key, Value: []byte(v)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	uri := "consul://" + addr + "/teams/analytics/good.yaml"
	data, err := consulspec.Read(ctx, uri)
	if err != nil || string(data) != good {
		t.Fatalf("read %s: %q %v", uri, data, err)
	}

	bin := testutil.Build(t, "github.com/sparkplane/sparkplane/cmd/sparkplane")
	home := t.TempDir()
	run := func(args ...string) (string, string, error) {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "SPARKPLANE_HOME="+home, "CONSUL_HTTP_ADDR=", "CONSUL_HTTP_TOKEN=")
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		return stdout.String(), stderr.String(), err
	}
	out, stderr, err := run("plan", "-f", uri, "-o", "json")
	if err != nil || !strings.Contains(out, `"name": "from-consul"`) || !strings.Contains(out, `"count": 3`) {
		t.Errorf("plan -f %s: %v\n%s\n%s", uri, err, out, stderr)
	}

	badURI := "consul://" + addr + "/teams/analytics/bad.yaml"
	_, stderr, err = run("plan", "-f", badURI)
	for _, want := range []string{badURI + ":5:10: ", "three", badURI + ":6:3: ", "colour"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("plan -f %s: stderr lacks %q (%v):\n%s", badURI, want, err, stderr)
		}
	}
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
		t.Errorf("a bad spec in Consul: %v, want exit 2", err)
	}

	for name, c := range map[string]struct{ uri, want string }{
		"a missing key":    {"consul://" + addr + "/teams/analytics/none.yaml", "no such key in Consul's KV store"},
		"a folder":         {"consul://" + addr + "/teams/analytics/", "a key ending in / is a folder"},
		"a relative path":  {"consul://" + addr + "/teams/analytics/relative.yaml", `storage.path: "logs" is a relative path`},
		"Consul not there": {"consul://" + testutil.FreeAddr(t) + "/k", "cannot read it from Consul"},
	} {
		_, err := loadSpec(ctx, c.uri)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", name, err, c.want)
		}
	}
}

// With Consul's ACLs on, a token that may not read the key is refused with how to give one, and
// CONSUL_HTTP_TOKEN, Consul's standard variable, gives one that may.
func TestSpecsFromConsulWithACLs(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a Consul agent")
	}
	const root = "2f5e3a57-7c4b-4d0c-9d1e-6a8b0c2d4e6f"
	addr := startConsul(t, root)
	if _, err := kv(t, addr, root).Put(&api.KVPair{Key: "sparkplane/analytics.yaml", Value: []byte("apiVersion: sparkplane.dev/v1alpha1\nkind: Cluster\nname: analytics\n")}, nil); err != nil {
		t.Fatal(err)
	}
	uri := "consul://" + addr + "/sparkplane/analytics.yaml"
	t.Setenv("CONSUL_HTTP_TOKEN", "")
	if _, err := consulspec.Read(context.Background(), uri); err == nil || !strings.Contains(err.Error(), "Consul refused to read the key") ||
		!strings.Contains(err.Error(), "CONSUL_HTTP_TOKEN") {
		t.Errorf("without a token: %v", err)
	}
	t.Setenv("CONSUL_HTTP_TOKEN", root)
	if c, err := loadSpec(context.Background(), uri); err != nil || c.Name != "analytics" {
		t.Errorf("with CONSUL_HTTP_TOKEN: %+v %v", c, err)
	}
}

func loadSpec(ctx context.Context, uri string) (*spec.Cluster, error) {
	data, err := consulspec.Read(ctx, uri)
	if err != nil {
		return nil, err
	}
	return spec.Parse(uri, data, spec.Options{})
}
