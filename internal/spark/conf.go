package spark

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// Settings are the cluster-wide choices that become Spark properties.
type Settings struct {
	Authenticate bool
	RESTPort     int    // > 0 turns on the master's REST submission server on this port
	EventLogDir  string // a URL or path; empty leaves event logging to the user's conf
	// Autoscale prepares applications for a cluster that changes size: dynamic allocation
	// (with shuffle tracking, which needs no external shuffle service) gives back executors an
	// application does not use, and executors are packed onto few workers rather than spread,
	// so that the others become idle and can go.
	Autoscale bool
	// S3A, when set, configures Hadoop's S3A connector (which NodeEnv.DistClassPath puts on the
	// class path).
	S3A  *S3AConf
	User map[string]string
}

// S3AConf is how Spark's S3A connector reaches S3.
type S3AConf struct {
	CredentialsProvider string // a class of the connector's AWS SDK (Connector.CredentialsProvider)
	Endpoint            string // an S3-compatible store's URL; empty for AWS's
	PathStyle           bool
	Region              string // the bucket's region, when known
}

// AuthSecretEnv is the environment variable Spark reads the shared secret from
// (SecurityManager.ENV_AUTH_SECRET). The secret travels only there: never in a file, never on a
// command line.
const AuthSecretEnv = "_SPARK_AUTH_SECRET"

// authSecretPlaceholder satisfies the check in SecurityManager.initializeAuth, which insists that
// a driver of a spark:// master has spark.authenticate.secret in its SparkConf even though the
// handshake itself takes the secret from AuthSecretEnv first (SPARK-25078). It is not a secret.
const authSecretPlaceholder = "sparkplane-uses-" + AuthSecretEnv

// Properties returns spark-defaults.conf for every node of a cluster: what sparkplane needs,
// then the user's properties (the spec has already refused the ones sparkplane must own).
func Properties(s Settings) map[string]string {
	p := map[string]string{
		// Graceful removal: workers and executors drain on a decommission signal, and cached and
		// shuffle blocks move off decommissioning executors.
		"spark.decommission.enabled":         "true",
		"spark.storage.decommission.enabled": "true",
		// sparkplane follows drivers through the master's JSON; spark-submit need not wait.
		"spark.standalone.submit.waitAppCompletion": "false",
		// Executors' metrics, gathered by each driver, at <driver UI>/metrics/executors/prometheus.
		"spark.ui.prometheus.enabled": "true",
	}
	if s.Authenticate {
		p["spark.authenticate"] = "true"
	}
	if s.RESTPort > 0 {
		p["spark.master.rest.enabled"] = "true"
		p["spark.master.rest.port"] = strconv.Itoa(s.RESTPort)
	} else {
		// Spark 4.x turns the REST submission server on by default, and no longer refuses it beside
		// spark.authenticate: left on, anyone reaching port 6066 could run code on the workers.
		p["spark.master.rest.enabled"] = "false"
	}
	if s.Autoscale {
		p["spark.dynamicAllocation.enabled"] = "true"
		p["spark.dynamicAllocation.shuffleTracking.enabled"] = "true"
		p["spark.deploy.spreadOut"] = "false"
	}
	if s.EventLogDir != "" {
		p["spark.eventLog.enabled"] = "true"
		p["spark.eventLog.dir"] = s.EventLogDir
		p["spark.history.fs.logDirectory"] = s.EventLogDir
	}
	if a := s.S3A; a != nil {
		p["spark.hadoop.fs.s3a.aws.credentials.provider"] = a.CredentialsProvider
		if a.Endpoint != "" {
			p["spark.hadoop.fs.s3a.endpoint"] = a.Endpoint
		}
		if a.PathStyle {
			p["spark.hadoop.fs.s3a.path.style.access"] = "true"
		}
		if a.Region != "" {
			p["spark.hadoop.fs.s3a.endpoint.region"] = a.Region
		}
	}
	maps.Copy(p, s.User)
	return p
}

// RenderProperties writes properties in the format Spark's spark-defaults.conf is read in
// (java.util.Properties), sorted so that the file is stable.
func RenderProperties(p map[string]string) []byte {
	var b bytes.Buffer
	b.WriteString("# Written by sparkplane. Changes are overwritten when the node starts.\n")
	for _, k := range slices.Sorted(maps.Keys(p)) {
		fmt.Fprintf(&b, "%s %s\n", escapeProperty(k, true), escapeProperty(p[k], false))
	}
	return b.Bytes()
}

func escapeProperty(s string, key bool) string {
	var b strings.Builder
	for i, r := range s {
		switch {
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case key && (r == ' ' || r == '=' || r == ':'):
			b.WriteByte('\\')
			b.WriteRune(r)
		case !key && i == 0 && r == ' ':
			b.WriteString(`\ `)
		case (r == '#' || r == '!') && i == 0:
			b.WriteByte('\\')
			b.WriteRune(r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// RenderEnv writes spark-env.sh: shell assignments that spark-class sources before it starts a
// JVM. It holds no secret.
func RenderEnv(env map[string]string) []byte {
	var b bytes.Buffer
	b.WriteString("# Written by sparkplane. Sourced by Spark's launch scripts.\n")
	for _, k := range slices.Sorted(maps.Keys(env)) {
		fmt.Fprintf(&b, "export %s=%s\n", k, ShellQuote(env[k]))
	}
	return b.Bytes()
}

// ShellQuote quotes s for POSIX shells.
func ShellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./:=,@%+") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// MetricsProperties turns on Spark's PrometheusServlet on every web UI (master, worker, driver),
// at the paths of PROTOCOL.md §5.
func MetricsProperties() []byte {
	return []byte(`# Written by sparkplane: Spark's own metrics in Prometheus' text format.
*.sink.prometheusServlet.class=org.apache.spark.metrics.sink.PrometheusServlet
*.sink.prometheusServlet.path=/metrics/prometheus
master.sink.prometheusServlet.path=/metrics/master/prometheus
applications.sink.prometheusServlet.path=/metrics/applications/prometheus
`)
}

// Log4j2Properties keeps Spark's console logging at INFO, as Spark's own template does; the
// agent captures the console into the node's log files.
func Log4j2Properties() []byte {
	return []byte(`# Written by sparkplane, after Spark's conf/log4j2.properties.template.
rootLogger.level = info
rootLogger.appenderRef.stdout.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n%ex
logger.jetty1.name = org.sparkproject.jetty
logger.jetty1.level = warn
logger.jetty2.name = org.sparkproject.jetty.util.component.AbstractLifeCycle
logger.jetty2.level = error
`)
}
