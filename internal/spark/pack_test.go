package spark

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// Pack writes what Unpack reads back: files with their contents and execute bits, directories,
// and links inside the distribution, under Apache's top-level directory.
func TestPackUnpackRoundTrip(t *testing.T) {
	home := t.TempDir()
	for path, body := range map[string]string{"bin/spark-class": "#!/bin/sh\n", "RELEASE": "Spark 3.5.3\n", "jars/a.jar": "jar"} {
		os.MkdirAll(filepath.Join(home, filepath.Dir(path)), 0o755)
		os.WriteFile(filepath.Join(home, path), []byte(body), 0o644)
	}
	os.Chmod(filepath.Join(home, "bin/spark-class"), 0o755)
	os.MkdirAll(filepath.Join(home, "conf"), 0o755)
	if err := os.Symlink("a.jar", filepath.Join(home, "jars/current.jar")); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := Pack(&buf, home, "3.5.3"); err != nil {
		t.Fatal(err)
	}
	tgz := filepath.Join(t.TempDir(), TarballName("3.5.3"))
	if err := os.WriteFile(tgz, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "spark")
	if err := Unpack(tgz, out); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{"bin/spark-class": "#!/bin/sh\n", "RELEASE": "Spark 3.5.3\n", "jars/current.jar": "jar"} {
		if got, err := os.ReadFile(filepath.Join(out, path)); err != nil || string(got) != want {
			t.Errorf("%s: %q %v, want %q", path, got, err, want)
		}
	}
	if st, err := os.Stat(filepath.Join(out, "bin/spark-class")); err != nil || st.Mode()&0o111 == 0 {
		t.Errorf("bin/spark-class lost its execute bit: %v %v", st.Mode(), err)
	}
	if st, err := os.Stat(filepath.Join(out, "conf")); err != nil || !st.IsDir() {
		t.Errorf("the empty conf directory: %v", err)
	}
	if link, err := os.Readlink(filepath.Join(out, "jars/current.jar")); err != nil || link != "a.jar" {
		t.Errorf("the link: %q %v", link, err)
	}
}
