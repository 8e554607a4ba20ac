package spark

import (
	"errors"
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// Deploy modes.
const (
	ClusterMode = "cluster"
	ClientMode  = "client"
)

// Submission is one application to hand to spark-submit.
type Submission struct {
	MasterURL string
	Resource  string // the application: a path on the submitting node or a URL
	MainClass string // JVM applications; may be empty when the jar's manifest names it
	Name      string // spark.app.name
	Conf      map[string]string
	PyFiles   []string
	Jars      []string
	Files     []string
	Args      []string
}

// IsPython reports whether the application is a Python program.
func (s Submission) IsPython() bool {
	return strings.EqualFold(filepath.Ext(urlPath(s.Resource)), ".py")
}

// DeployMode is where the driver runs. Standalone cluster mode does not run Python (SparkSubmit
// refuses it), so Python drivers run in client mode on the submitting node, the master.
func (s Submission) DeployMode() string {
	if s.IsPython() {
		return ClientMode
	}
	return ClusterMode
}

func urlPath(s string) string {
	if i := strings.IndexAny(s, "?#"); i >= 0 {
		s = s[:i]
	}
	return s
}

// ErrNoResource is returned for a submission without an application.
var ErrNoResource = errors.New("no application to submit")

// SubmitCommand is the spark-submit command line for s. Conf values are the user's; the cluster
// secret never appears here (it reaches spark-submit through its environment).
func (d *Distribution) SubmitCommand(s Submission) ([]string, error) {
	if s.Resource == "" {
		return nil, ErrNoResource
	}
	cmd := []string{
		filepath.Join(d.Home, "bin", "spark-submit"),
		"--master", s.MasterURL,
		"--deploy-mode", s.DeployMode(),
	}
	if s.Name != "" {
		cmd = append(cmd, "--name", s.Name)
	}
	if s.MainClass != "" && !s.IsPython() {
		cmd = append(cmd, "--class", s.MainClass)
	}
	if len(s.Jars) > 0 {
		cmd = append(cmd, "--jars", strings.Join(s.Jars, ","))
	}
	if len(s.PyFiles) > 0 {
		cmd = append(cmd, "--py-files", strings.Join(s.PyFiles, ","))
	}
	if len(s.Files) > 0 {
		cmd = append(cmd, "--files", strings.Join(s.Files, ","))
	}
	for _, k := range slices.Sorted(maps.Keys(s.Conf)) {
		cmd = append(cmd, "--conf", k+"="+s.Conf[k])
	}
	cmd = append(cmd, s.Resource)
	return append(cmd, s.Args...), nil
}

// KillCommand asks the master, over Spark's authenticated RPC, to kill a cluster-mode driver.
func (d *Distribution) KillCommand(masterURL, driverID string) []string {
	return []string{filepath.Join(d.Home, "bin", "spark-submit"), "--master", masterURL, "--kill", driverID}
}

// The legacy standalone client logs the master's reply, "Driver successfully submitted as <id>"
// (Master.scala, RequestSubmitDriver), on stderr.
var submittedRe = regexp.MustCompile(`Driver successfully submitted as (\S+)`)

// ParseDriverID finds the driver id in spark-submit's output in cluster mode.
func ParseDriverID(output string) (string, bool) {
	m := submittedRe.FindStringSubmatch(output)
	if m == nil {
		return "", false
	}
	return m[1], true
}
