package spark

import (
	"errors"
	"os"
	"path/filepath"
)

// ErrNoJava means no Java runtime was found. Spark's daemons and spark-submit need one.
var ErrNoJava = errors.New("no Java runtime found: Spark 3.5 runs on Java 8, 11 or 17 and Spark 4 on 17 or 21; " +
	"install one (e.g. apt-get install openjdk-17-jre-headless) or set JAVA_HOME")

// FindJava returns JAVA_HOME when it holds bin/java, else the home of the java on PATH.
// getenv is os.Getenv in production; tests pass their own.
func FindJava(getenv func(string) string) (javaHome string, err error) {
	if h := getenv("JAVA_HOME"); h != "" {
		if isExecutable(filepath.Join(h, "bin", "java")) {
			return h, nil
		}
		return "", errors.New("JAVA_HOME=" + h + " has no bin/java; point it at a Java installation or unset it")
	}
	for _, dir := range filepath.SplitList(getenv("PATH")) {
		p := filepath.Join(dir, "java")
		if !isExecutable(p) {
			continue
		}
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		// .../bin/java → ...
		return filepath.Dir(filepath.Dir(p)), nil
	}
	return "", ErrNoJava
}

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}
