package spark

import (
	"path/filepath"
	"strconv"
)

// HistoryServerClass is Spark's history server, as sbin/start-history-server.sh names it.
const HistoryServerClass = "org.apache.spark.deploy.history.HistoryServer"

// HistoryProperties configure a history server on the event logs at logDir (a URL: file://…,
// s3a://…) with its web UI on port.
func HistoryProperties(logDir string, port int) map[string]string {
	return map[string]string{
		"spark.history.fs.logDirectory":    logDir,
		"spark.history.ui.port":            strconv.Itoa(port),
		"spark.history.fs.update.interval": "5s", // new applications show up soon after they start
	}
}

// HistoryServerCommand is the foreground launch of a history server reading its configuration
// from propertiesFile (HistoryServerArguments' --properties-file).
func (d *Distribution) HistoryServerCommand(propertiesFile string) []string {
	return []string{filepath.Join(d.Home, "bin", "spark-class"), HistoryServerClass, "--properties-file", propertiesFile}
}
