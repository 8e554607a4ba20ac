package monitoring

import (
	"embed"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"sort"

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

// WriteGrafana writes the dashboards and the provisioning files that load them, with the
// datasource pointing at prometheusURL, under dir/grafana. Grafana picks them up when started
// with its provisioning path there:
//
//	grafana server cfg:default.paths.provisioning=DIR/grafana/provisioning
func WriteGrafana(dir, prometheusURL string) error {
	abs, err := filepath.Abs(filepath.Join(dir, GrafanaDir))
	if err != nil {
		return err
	}
	files := map[string][]byte{
		"provisioning/datasources/sparkplane.yaml": fmt.Appendf(nil, `# Written by sparkplane monitor.
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
`, DatasourceUID, prometheusURL),
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
