package monitoring

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"sort"

	"github.com/sparkplane/sparkplane/internal/agent/agentapi"
	"github.com/sparkplane/sparkplane/internal/fsutil"
)

//go:embed grafana/dashboards/*.json
var dashboardFiles embed.FS

// DatasourceUID is the uid of the Prometheus datasource every dashboard panel names.
const DatasourceUID = "sparkplane-prometheus"

// Dashboards are the Grafana dashboards sparkplane ships, by file name.
func Dashboards() map[string][]byte {
	out := map[string][]byte{}
	entries, _ := fs.ReadDir(dashboardFiles, "grafana/dashboards")
	for _, e := range entries {
		b, _ := dashboardFiles.ReadFile(path.Join("grafana/dashboards", e.Name()))
		out[e.Name()] = b
	}
	return out
}

// EnvGrafanaPrometheusPassword is the variable in Grafana's environment that its datasource's
// password for a Prometheus behind a login comes from, so that no file holds it.
const EnvGrafanaPrometheusPassword = "SPARKPLANE_PROMETHEUS_PASSWORD"

// WriteGrafana writes the dashboards and the provisioning files that load them, with the
// datasource pointing at prometheusURL, under dir/grafana. Grafana picks them up when started
// with its provisioning path there:
//
//	grafana server cfg:default.paths.provisioning=DIR/grafana/provisioning
//
// With login (a Prometheus behind one), the datasource signs in as its user, with the password
// from Grafana's environment (EnvGrafanaPrometheusPassword), and trusts its certificate.
func WriteGrafana(dir, prometheusURL string, login *Login) error {
	abs, err := filepath.Abs(filepath.Join(dir, GrafanaDir))
	if err != nil {
		return err
	}
	datasource := fmt.Sprintf(`# Written by sparkplane monitor.
apiVersion: 1
datasources:
  - name: sparkplane
    uid: %s
    type: prometheus
    access: proxy
    url: %s
    isDefault: true
    jsonData:
      timeInterval: 10s
`, DatasourceUID, prometheusURL)
	if login != nil {
		ca, err := json.Marshal(string(login.CA)) // a JSON string is a YAML string
		if err != nil {
			return err
		}
		datasource += fmt.Sprintf(`      tlsAuthWithCACert: true
      serverName: %q
    basicAuth: true
    basicAuthUser: %q
    secureJsonData:
      basicAuthPassword: ${%s}
      tlsCACert: %s
`, agentapi.TLSServerName, login.User, EnvGrafanaPrometheusPassword, ca)
	}
	files := map[string][]byte{
		"provisioning/datasources/sparkplane.yaml": []byte(datasource),
		"provisioning/dashboards/sparkplane.yaml": fmt.Appendf(nil, `# Written by sparkplane monitor.
apiVersion: 1
providers:
  - name: sparkplane
    folder: sparkplane
    type: file
    allowUiUpdates: true
    options:
      path: %s
`, filepath.Join(abs, "dashboards")),
	}
	for name, b := range Dashboards() {
		files["dashboards/"+name] = b
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := fsutil.WriteFileAtomic(filepath.Join(abs, n), files[n], 0o644); err != nil {
			return err
		}
	}
	return nil
}
