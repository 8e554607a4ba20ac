package spark

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Daemon classes, as sbin/start-master.sh and sbin/start-worker.sh name them.
const (
	MasterClass = "org.apache.spark.deploy.master.Master"
	WorkerClass = "org.apache.spark.deploy.worker.Worker"
)

// MasterArgs are the master daemon's arguments (MasterArguments.scala).
type MasterArgs struct {
	Host      string
	Port      int // RPC, 7077 by convention
	WebUIPort int // 8080 by convention
}

// MasterCommand is the foreground launch of a master: what sbin/start-master.sh hands to
// spark-daemon.sh, without the daemonizing, so that the agent can supervise the process.
func (d *Distribution) MasterCommand(a MasterArgs) []string {
	return []string{
		filepath.Join(d.Home, "bin", "spark-class"), MasterClass,
		"--host", a.Host,
		"--port", strconv.Itoa(a.Port),
		"--webui-port", strconv.Itoa(a.WebUIPort),
	}
}

// WorkerArgs are the worker daemon's arguments (WorkerArguments.scala).
type WorkerArgs struct {
	MasterURL string // spark://host:port
	Host      string
	Port      int // RPC; 0 lets Spark choose
	WebUIPort int
	Cores     int    // 0 means all of the machine's
	MemoryMiB int    // 0 means the machine's memory minus 1 GiB
	WorkDir   string // where executors and drivers run, and keep their stdout and stderr
}

// WorkerCommand is the foreground launch of a worker.
func (d *Distribution) WorkerCommand(a WorkerArgs) []string {
	cmd := []string{
		filepath.Join(d.Home, "bin", "spark-class"), WorkerClass,
		"--host", a.Host,
		"--webui-port", strconv.Itoa(a.WebUIPort),
	}
	if a.Port > 0 {
		cmd = append(cmd, "--port", strconv.Itoa(a.Port))
	}
	if a.Cores > 0 {
		cmd = append(cmd, "--cores", strconv.Itoa(a.Cores))
	}
	if a.MemoryMiB > 0 {
		cmd = append(cmd, "--memory", strconv.Itoa(a.MemoryMiB)+"m")
	}
	if a.WorkDir != "" {
		cmd = append(cmd, "--work-dir", a.WorkDir)
	}
	return append(cmd, a.MasterURL)
}

// NodeEnv is the environment every Spark process on a node runs with. It is also written to
// spark-env.sh, so it must hold no secret.
type NodeEnv struct {
	JavaHome string
	ConfDir  string // SPARK_CONF_DIR: spark-defaults.conf, metrics.properties, log4j2.properties
	LogDir   string
	LocalIP  string // SPARK_LOCAL_IP: the address Spark binds and advertises
	WorkDir  string // SPARK_WORKER_DIR
	// LocalDirs is SPARK_LOCAL_DIRS: Spark's scratch space (shuffle, spills, a driver's and
	// executors' temporary files), kept inside the node's directory so that destroy removes it.
	LocalDirs string
	// DistClassPath is SPARK_DIST_CLASSPATH: jars that spark-class puts after Spark's own on the
	// class path of every JVM it starts (daemons, drivers, and the executors and drivers a worker
	// starts with its environment). The S3A connector goes there.
	DistClassPath string
}

// Vars returns the environment variables of e.
func (e NodeEnv) Vars() map[string]string {
	v := map[string]string{
		"SPARK_CONF_DIR": e.ConfDir,
		"SPARK_LOG_DIR":  e.LogDir,
		"SPARK_PID_DIR":  e.LogDir,
	}
	if e.JavaHome != "" {
		v["JAVA_HOME"] = e.JavaHome
	}
	if e.LocalIP != "" {
		v["SPARK_LOCAL_IP"] = e.LocalIP
	}
	if e.WorkDir != "" {
		v["SPARK_WORKER_DIR"] = e.WorkDir
	}
	if e.LocalDirs != "" {
		v["SPARK_LOCAL_DIRS"] = e.LocalDirs
	}
	if e.DistClassPath != "" {
		v["SPARK_DIST_CLASSPATH"] = e.DistClassPath
	}
	return v
}

// Environ is the full environment of a Spark process: this process's environment without any
// variable Spark would read in our place, then vars, then the secret when there is one.
func Environ(base []string, vars map[string]string, secret string) []string {
	drop := map[string]bool{"SPARK_HOME": true, "SPARK_ENV_LOADED": true, AuthSecretEnv: true}
	for k := range vars {
		drop[k] = true
	}
	var out []string
	for _, kv := range base {
		k, _, _ := strings.Cut(kv, "=")
		if !drop[k] && !strings.HasPrefix(k, "SPARK_MASTER_") && !strings.HasPrefix(k, "SPARK_WORKER_") {
			out = append(out, kv)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(vars)) {
		out = append(out, k+"="+vars[k])
	}
	if secret != "" {
		out = append(out, AuthSecretEnv+"="+secret)
		out = appendJavaOption(out, "JDK_JAVA_OPTIONS", "-Dspark.authenticate.secret="+authSecretPlaceholder)
	}
	return out
}

// appendJavaOption adds opt to the Java options variable name in env, keeping what is there.
func appendJavaOption(env []string, name, opt string) []string {
	for i, kv := range env {
		if v, ok := strings.CutPrefix(kv, name+"="); ok {
			env[i] = fmt.Sprintf("%s=%s %s", name, v, opt)
			return env
		}
	}
	return append(env, name+"="+opt)
}

// WriteConf writes a node's SPARK_CONF_DIR.
func WriteConf(dir string, props map[string]string, env NodeEnv) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	files := map[string][]byte{
		"spark-defaults.conf": RenderProperties(props),
		"spark-env.sh":        RenderEnv(env.Vars()),
		"metrics.properties":  MetricsProperties(),
		"log4j2.properties":   Log4j2Properties(),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
	}
	return nil
}
