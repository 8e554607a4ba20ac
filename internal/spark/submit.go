package spark

import (
	"errors"
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
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

// ClusterDriver returns s ready for a driver that a worker launches (cluster deploy mode). Spark
// 3.x's DriverRunner starts that JVM without the --add-opens options its launcher gives every
// other JVM (JavaModuleOptions), so on Java 17 the driver dies at once in StorageUtils
// (IllegalAccessError: sun.nio.ch.DirectBuffer); seen on 3.5.9, not on 4.x, whose workers add
// them. For 3.x the options go before the user's spark.driver.extraJavaOptions.
func (d *Distribution) ClusterDriver(s Submission) Submission {
	if s.DeployMode() != ClusterMode || !strings.HasPrefix(d.Version, "3.") {
		return s
	}
	conf := maps.Clone(s.Conf)
	if conf == nil {
		conf = map[string]string{}
	}
	opts := strings.Join(javaModuleOptions3, " ")
	if user := conf[driverJavaOptions]; user != "" {
		opts += " " + user
	}
	conf[driverJavaOptions] = opts
	s.Conf = conf
	return s
}

const driverJavaOptions = "spark.driver.extraJavaOptions"

// javaModuleOptions3 is Spark 3.5's org.apache.spark.launcher.JavaModuleOptions (read from
// spark-launcher_2.12-3.5.9.jar). -XX:+IgnoreUnrecognizedVMOptions makes Java 8 pass over them.
var javaModuleOptions3 = []string{
	"-XX:+IgnoreUnrecognizedVMOptions",
	"--add-opens=java.base/java.lang=ALL-UNNAMED",
	"--add-opens=java.base/java.lang.invoke=ALL-UNNAMED",
	"--add-opens=java.base/java.lang.reflect=ALL-UNNAMED",
	"--add-opens=java.base/java.io=ALL-UNNAMED",
	"--add-opens=java.base/java.net=ALL-UNNAMED",
	"--add-opens=java.base/java.nio=ALL-UNNAMED",
	"--add-opens=java.base/java.util=ALL-UNNAMED",
	"--add-opens=java.base/java.util.concurrent=ALL-UNNAMED",
	"--add-opens=java.base/java.util.concurrent.atomic=ALL-UNNAMED",
	"--add-opens=java.base/jdk.internal.ref=ALL-UNNAMED",
	"--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
	"--add-opens=java.base/sun.nio.cs=ALL-UNNAMED",
	"--add-opens=java.base/sun.security.action=ALL-UNNAMED",
	"--add-opens=java.base/sun.util.calendar=ALL-UNNAMED",
	"--add-opens=java.security.jgss/sun.security.krb5=ALL-UNNAMED",
	"-Djdk.reflect.useDirectMethodHandle=false",
}

// KillCommand asks the master, over Spark's (authenticated) RPC, to kill a cluster-mode driver:
// the legacy standalone client, as Spark's standalone docs give it. `spark-submit --kill` is no
// use here: on a spark:// master it always goes through the REST submission server
// (SparkSubmit.kill → RestSubmissionClient, in 3.5 and 4.x alike), which sparkplane leaves off
// beside spark.authenticate. The client reads no spark-defaults.conf, so KillEnviron passes it
// spark.authenticate.
func (d *Distribution) KillCommand(masterURL, driverID string) []string {
	return []string{filepath.Join(d.Home, "bin", "spark-class"), "org.apache.spark.deploy.Client", "kill", masterURL, driverID}
}

// KillEnviron is the environment of KillCommand: env (from Environ) with spark.authenticate on
// when the cluster authenticates.
func KillEnviron(env []string, authenticate bool) []string {
	if !authenticate {
		return env
	}
	return appendJavaOption(slices.Clone(env), "JDK_JAVA_OPTIONS", "-Dspark.authenticate=true")
}

// The legacy standalone client logs the master's reply, "Driver successfully submitted as <id>"
// (Master.scala, RequestSubmitDriver), on stderr.
var submittedRe = regexp.MustCompile(`Driver successfully submitted as (\S+)`)

// A driver in a standalone cluster logs its application's id once the master registered it
// (StandaloneSchedulerBackend, the same text in 3.5 and 4.x).
var appIDRe = regexp.MustCompile(`Connected to Spark cluster with app ID (app-[0-9]+-[0-9]+)`)

// ParseAppID finds the application id in a driver's log. It is how a client-mode job is tied to
// its application: the name in the master's JSON is whatever the program set (pi.py calls itself
// PythonPi), not the name it was submitted under.
func ParseAppID(log []byte) (string, bool) {
	m := appIDRe.FindSubmatch(log)
	if m == nil {
		return "", false
	}
	return string(m[1]), true
}

// ParseDriverID finds the driver id in spark-submit's output in cluster mode.
func ParseDriverID(output string) (string, bool) {
	m := submittedRe.FindStringSubmatch(output)
	if m == nil {
		return "", false
	}
	return m[1], true
}

// hostSpecificEnv are the variables that describe the host a process runs on, which a driver
// started on another host must not inherit.
var hostSpecificEnv = []string{"SPARK_LOCAL_IP", "SPARK_LOCAL_HOSTNAME", "SPARK_LOCAL_DIRS"}

// SubmitEnviron is the environment of a spark-submit run with env as the node's. Before Spark
// 4.3.0 the standalone client (org.apache.spark.deploy.ClientEndpoint) sends its whole
// environment with a cluster-mode driver, and the worker that starts the driver lays it over its
// own; so a driver on another host would bind to the submitting host's SPARK_LOCAL_IP and fail.
// 4.3.0 drops SPARK_LOCAL_IP and SPARK_LOCAL_HOSTNAME itself
// (spark.standalone.submit.filterEnvironment, read from spark-core_2.13-4.3.0.jar). For older
// releases, when the cluster's nodes are on several hosts, the host's variables stay out of a
// cluster-mode submission, so that the driver takes its worker's; the client then binds to the
// address its host name resolves to, as plain Spark does. SPARK_ENV_LOADED keeps
// load-spark-env.sh from reading them back from the node's spark-env.sh (env already holds the
// rest of it: spark.Environ). On one host (the local provider) they are the same everywhere and
// stay.
func (d *Distribution) SubmitEnviron(env []string, s Submission, oneHost bool) []string {
	if oneHost || s.DeployMode() != ClusterMode || !versionBefore(d.Version, 4, 3) {
		return env
	}
	out := slices.DeleteFunc(slices.Clone(env), func(kv string) bool {
		k, _, _ := strings.Cut(kv, "=")
		return k == "SPARK_ENV_LOADED" || slices.Contains(hostSpecificEnv, k)
	})
	return append(out, "SPARK_ENV_LOADED=1")
}

// versionBefore says whether release v ("3.5.9", "4.0.1") is older than major.minor; a version
// it cannot read counts as new.
func versionBefore(v string, major, minor int) bool {
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return false
	}
	ma, err1 := strconv.Atoi(parts[0])
	mi, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil {
		return false
	}
	return ma < major || ma == major && mi < minor
}
