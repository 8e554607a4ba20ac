package standin

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
)

// readProperties reads a java.util.Properties file as Spark reads spark-defaults.conf: "key value",
// "key=value" or "key: value", comments with # or !, backslash escapes. A missing file is empty.
func readProperties(path string) map[string]string {
	out := map[string]string{}
	f, err := os.Open(path)
	if err != nil {
		return out
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimLeft(sc.Text(), " \t")
		if line == "" || line[0] == '#' || line[0] == '!' {
			continue
		}
		var key strings.Builder
		i := 0
		for ; i < len(line); i++ {
			c := line[i]
			if c == '\\' && i+1 < len(line) {
				i++
				key.WriteByte(unescape(line[i]))
				continue
			}
			if c == ' ' || c == '\t' || c == '=' || c == ':' {
				break
			}
			key.WriteByte(c)
		}
		rest := strings.TrimLeft(line[i:], " \t")
		if rest != "" && (rest[0] == '=' || rest[0] == ':') {
			rest = strings.TrimLeft(rest[1:], " \t")
		}
		var val strings.Builder
		for j := 0; j < len(rest); j++ {
			if rest[j] == '\\' && j+1 < len(rest) {
				j++
				val.WriteByte(unescape(rest[j]))
				continue
			}
			val.WriteByte(rest[j])
		}
		// Spark trims values (Utils.getPropertiesFromFile).
		out[key.String()] = strings.TrimSpace(val.String())
	}
	return out
}

func unescape(c byte) byte {
	switch c {
	case 'n':
		return '\n'
	case 't':
		return '\t'
	case 'r':
		return '\r'
	}
	return c
}

// sparkConf is the configuration a Spark JVM on this node sees: spark-defaults.conf from
// SPARK_CONF_DIR, then -Dspark.* system properties from the Java options variables, then extra.
func sparkConf(env func(string) string, extra map[string]string) map[string]string {
	conf := map[string]string{}
	if dir := env("SPARK_CONF_DIR"); dir != "" {
		for k, v := range readProperties(filepath.Join(dir, "spark-defaults.conf")) {
			if strings.HasPrefix(k, "spark.") {
				conf[k] = v
			}
		}
	}
	for _, name := range []string{"JDK_JAVA_OPTIONS", "_JAVA_OPTIONS"} {
		for _, opt := range strings.Fields(env(name)) {
			if kv, ok := strings.CutPrefix(opt, "-D"); ok {
				k, v, _ := strings.Cut(kv, "=")
				if strings.HasPrefix(k, "spark.") {
					conf[k] = v
				}
			}
		}
	}
	for k, v := range extra {
		conf[k] = v
	}
	return conf
}

func envFunc(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func environMap(environ []string) map[string]string {
	m := map[string]string{}
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}
