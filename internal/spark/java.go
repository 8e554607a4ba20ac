package spark

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
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

// JavaMajor is the major version of the Java at javaHome (8 for 1.8.0_392, 17 for 17.0.15): from
// its release file, or from `java -version` when it has none.
func JavaMajor(javaHome string) (int, error) {
	var v string
	if b, err := os.ReadFile(filepath.Join(javaHome, "release")); err == nil {
		if m := javaReleaseRe.FindSubmatch(b); m != nil {
			v = string(m[1])
		}
	}
	if v == "" {
		out, err := exec.Command(filepath.Join(javaHome, "bin", "java"), "-version").CombinedOutput()
		m := javaVersionRe.FindSubmatch(out)
		if m == nil {
			return 0, fmt.Errorf("cannot tell the version of %s/bin/java (%v): %s", javaHome, err, bytes.TrimSpace(out))
		}
		v = string(m[1])
	}
	v = strings.TrimPrefix(v, "1.") // 1.8.0 → 8
	n, err := strconv.Atoi(strings.FieldsFunc(v, func(r rune) bool { return r < '0' || r > '9' })[0])
	if err != nil {
		return 0, fmt.Errorf("java version %q: %w", v, err)
	}
	return n, nil
}

var (
	javaReleaseRe = regexp.MustCompile(`(?m)^JAVA_VERSION="([^"]+)"`)
	javaVersionRe = regexp.MustCompile(`version "([^"]+)"`)
)

// JavaError means the Java found cannot run the chosen Spark.
type JavaError struct {
	JavaHome     string
	Major        int
	SparkVersion string
	Oldest       int
}

func (e *JavaError) Error() string {
	return fmt.Sprintf("Spark %s needs Java %d or later, and the Java at %s is Java %d: install a newer one "+
		"(e.g. apt-get install openjdk-17-jre-headless) and point JAVA_HOME at it, or choose a Spark for Java %d with spark.version",
		e.SparkVersion, e.Oldest, e.JavaHome, e.Major, e.Major)
}

// CheckJava says whether the Java at javaHome runs Spark sparkVersion: an error (a *JavaError)
// when it is too old, a warning when it is newer than any Java sparkplane has seen run that line.
func CheckJava(javaHome, sparkVersion string) (warning string, err error) {
	major, err := JavaMajor(javaHome)
	if err != nil {
		return "", err
	}
	oldest, newest := javaNeeds(sparkVersion)
	if major < oldest {
		return "", &JavaError{JavaHome: javaHome, Major: major, SparkVersion: sparkVersion, Oldest: oldest}
	}
	if newest > 0 && major > newest {
		return fmt.Sprintf("Java %d at %s is newer than any sparkplane has tested Spark %s on (%d is); if Spark misbehaves, point JAVA_HOME at Java %d",
			major, javaHome, sparkVersion, newest, newest), nil
	}
	return "", nil
}

// FindJavaFor finds Java (as FindJava does) and checks that it runs Spark sparkVersion (as
// CheckJava does).
func FindJavaFor(getenv func(string) string, sparkVersion string) (javaHome, warning string, err error) {
	if javaHome, err = FindJava(getenv); err != nil {
		return "", "", err
	}
	warning, err = CheckJava(javaHome, sparkVersion)
	return javaHome, warning, err
}
