package spark

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

type tarEntry struct {
	name, body, link string
	mode             int64
	dir              bool
}

func makeTarball(t *testing.T, entries []tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: e.mode, Size: int64(len(e.body)), Typeflag: tar.TypeReg}
		switch {
		case e.dir:
			h.Typeflag, h.Size = tar.TypeDir, 0
		case e.link != "":
			h.Typeflag, h.Linkname, h.Size = tar.TypeSymlink, e.link, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write([]byte(e.body))
		}
	}
	tw.Close()
	gz.Close()
	return buf.Bytes()
}

func releaseTarball(t *testing.T, version string) []byte {
	top := "spark-" + version + "-bin-hadoop3/"
	return makeTarball(t, []tarEntry{
		{name: top, dir: true, mode: 0o755},
		{name: top + "RELEASE", body: "Spark " + version + " built for Hadoop 3.3.4\n", mode: 0o644},
		{name: top + "bin/spark-class", body: "#!/bin/sh\n", mode: 0o755},
		{name: top + "bin/spark-submit", body: "#!/bin/sh\n", mode: 0o755},
		{name: top + "jars/spark-core.jar", body: "not really a jar", mode: 0o644},
		{name: top + "bin/spark-shell-link", link: "spark-submit"},
	})
}

// mirror serves tarballs and checksums like an Apache mirror and counts requests.
type mirror struct {
	files map[string][]byte
	hits  atomic.Int64
}

func (m *mirror) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m.hits.Add(1)
	b, ok := m.files[r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Write(b)
}

func shasum(b []byte, name string) []byte {
	s := sha512.Sum512(b)
	return []byte(hex.EncodeToString(s[:]) + "  " + name + "\n")
}

func TestResolveDownloadsVerifiesAndCaches(t *testing.T) {
	const v = "3.5.3"
	tgz := releaseTarball(t, v)
	m := &mirror{files: map[string][]byte{
		"/spark/spark-3.5.3/spark-3.5.3-bin-hadoop3.tgz":        tgz,
		"/spark/spark-3.5.3/spark-3.5.3-bin-hadoop3.tgz.sha512": shasum(tgz, "spark-3.5.3-bin-hadoop3.tgz"),
	}}
	srv := httptest.NewServer(m)
	defer srv.Close()
	cache := t.TempDir()
	var lastDone, lastTotal int64
	opts := ResolveOptions{Version: v, Mirrors: []string{srv.URL}, CacheDir: cache,
		Progress: func(done, total int64) { lastDone, lastTotal = done, total }}

	d, err := Resolve(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if d.Version != v {
		t.Errorf("version = %q", d.Version)
	}
	if d.Home != filepath.Join(cache, "spark-3.5.3-bin-hadoop3") {
		t.Errorf("home = %s", d.Home)
	}
	if st, err := os.Stat(filepath.Join(d.Home, "bin/spark-class")); err != nil || st.Mode()&0o100 == 0 {
		t.Errorf("spark-class not executable: %v", err)
	}
	if l, err := os.Readlink(filepath.Join(d.Home, "bin/spark-shell-link")); err != nil || l != "spark-submit" {
		t.Errorf("symlink: %q %v", l, err)
	}
	if d.Tarball == "" {
		t.Error("the verified tarball must be kept for providers that upload it")
	}
	if lastDone != int64(len(tgz)) || lastTotal != int64(len(tgz)) {
		t.Errorf("progress ended at %d/%d, want %d/%d", lastDone, lastTotal, len(tgz), len(tgz))
	}

	hits := m.hits.Load()
	if _, err := Resolve(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	if m.hits.Load() != hits {
		t.Error("second Resolve downloaded again instead of using the cache")
	}
}

func TestResolveRejectsCorruptTarball(t *testing.T) {
	tgz := releaseTarball(t, "3.5.3")
	good := shasum(tgz, "spark-3.5.3-bin-hadoop3.tgz")
	tgz[len(tgz)/2] ^= 0xff
	m := &mirror{files: map[string][]byte{
		"/spark/spark-3.5.3/spark-3.5.3-bin-hadoop3.tgz":        tgz,
		"/spark/spark-3.5.3/spark-3.5.3-bin-hadoop3.tgz.sha512": good,
	}}
	srv := httptest.NewServer(m)
	defer srv.Close()
	cache := t.TempDir()
	_, err := Resolve(context.Background(), ResolveOptions{Version: "3.5.3", Mirrors: []string{srv.URL}, CacheDir: cache})
	var ce *ChecksumError
	if !errors.As(err, &ce) {
		t.Fatalf("want a ChecksumError, got %v", err)
	}
	if !strings.Contains(err.Error(), "SHA-512") || !strings.Contains(err.Error(), "SPARK_HOME") {
		t.Errorf("error should explain the checksum and the way out: %v", err)
	}
	left, _ := filepath.Glob(filepath.Join(cache, "*"))
	for _, f := range left {
		if !strings.HasPrefix(filepath.Base(f), ".lock-") {
			t.Errorf("left behind: %s", f)
		}
	}
}

func TestResolveFallsBackToNextMirrorAndExplainsOffline(t *testing.T) {
	tgz := releaseTarball(t, "3.5.3")
	empty := httptest.NewServer(&mirror{files: map[string][]byte{}})
	defer empty.Close()
	good := httptest.NewServer(&mirror{files: map[string][]byte{
		"/spark/spark-3.5.3/spark-3.5.3-bin-hadoop3.tgz":        tgz,
		"/spark/spark-3.5.3/spark-3.5.3-bin-hadoop3.tgz.sha512": shasum(tgz, "x"),
	}})
	defer good.Close()
	if _, err := Resolve(context.Background(), ResolveOptions{Version: "3.5.3", Mirrors: []string{empty.URL, good.URL}, CacheDir: t.TempDir()}); err != nil {
		t.Fatalf("second mirror should have served: %v", err)
	}

	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	_, err := Resolve(context.Background(), ResolveOptions{Version: "3.5.3", Mirrors: []string{deadURL}, CacheDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "could not download Spark 3.5.3") || !strings.Contains(err.Error(), "set SPARK_HOME or --spark-home") {
		t.Fatalf("offline error must say what failed and how to get round it: %v", err)
	}
}

func TestUnpackRefusesEscapes(t *testing.T) {
	for name, entries := range map[string][]tarEntry{
		"dotdot":      {{name: "spark/", dir: true}, {name: "spark/../../evil", body: "x", mode: 0o644}},
		"absolute":    {{name: "/etc/evil", body: "x", mode: 0o644}},
		"link":        {{name: "spark/", dir: true}, {name: "spark/l", link: "../../../etc/passwd"}},
		"two-roots":   {{name: "a/x", body: "x", mode: 0o644}, {name: "b/y", body: "y", mode: 0o644}},
		"no-entries":  {},
		"abs-symlink": {{name: "spark/l", link: "/etc/passwd"}},
		// Each link alone stays inside by its name; followed one after the other they leave.
		"link-chain": {{name: "spark/", dir: true}, {name: "spark/d1", link: ".."}, {name: "spark/d1/d2", link: ".."},
			{name: "spark/d1/d2/outside/evil", body: "x", mode: 0o644}},
		"link-to-parent":   {{name: "spark/", dir: true}, {name: "spark/up", link: ".."}},
		"through-a-link":   {{name: "spark/", dir: true}, {name: "spark/bin", link: "jars"}, {name: "spark/jars/", dir: true}, {name: "spark/bin/x", body: "x", mode: 0o644}},
		"link-via-a-link":  {{name: "spark/", dir: true}, {name: "spark/a/", dir: true}, {name: "spark/a/up", link: ".."}, {name: "spark/b", link: "a/up/../.."}},
		"link-loop":        {{name: "spark/", dir: true}, {name: "spark/x", link: "y"}, {name: "spark/y", link: "x"}},
		"dangling-symlink": {{name: "spark/", dir: true}, {name: "spark/l", link: "nothing-here"}},
	} {
		t.Run(name, func(t *testing.T) {
			// The archive is unpacked in parent/work; nothing may appear in parent.
			parent := t.TempDir()
			dir := filepath.Join(parent, "work")
			os.Mkdir(dir, 0o755)
			tgz := filepath.Join(parent, "x.tgz")
			os.WriteFile(tgz, makeTarball(t, entries), 0o644)
			if err := unpack(tgz, dir, filepath.Join(dir, "out")); err == nil {
				t.Fatal("unpack accepted a bad archive")
			}
			if _, err := os.Stat(filepath.Join(dir, "out")); err == nil {
				t.Fatal("a bad archive left an unpacked directory")
			}
			for _, d := range []string{parent, dir} {
				if ents, _ := os.ReadDir(d); len(ents) != map[string]int{parent: 2, dir: 0}[d] {
					var names []string
					for _, e := range ents {
						names = append(names, e.Name())
					}
					t.Errorf("%s holds %v after the refusal", d, names)
				}
			}
		})
	}
}

func TestParseSHA512(t *testing.T) {
	sum := sha512.Sum512([]byte("spark"))
	hexs := hex.EncodeToString(sum[:])
	upperGrouped := strings.ToUpper(hexs)
	var groups []string
	for i := 0; i < len(upperGrouped); i += 8 {
		groups = append(groups, upperGrouped[i:i+8])
	}
	gpg := "spark-2.4.0-bin-hadoop2.7.tgz: " + strings.Join(groups[:8], " ") + "\n                               " + strings.Join(groups[8:], " ") + "\n"
	for name, in := range map[string]string{
		"shasum": hexs + "  spark-3.5.3-bin-hadoop3.tgz\n",
		"bare":   hexs,
		"gpg":    gpg,
	} {
		got, err := ParseSHA512(in)
		if err != nil || got != hexs {
			t.Errorf("%s: got %q, %v", name, got, err)
		}
	}
	for _, bad := range []string{"", "abc  file", "<html>404</html>", strings.Repeat("z", 128)} {
		if _, err := ParseSHA512(bad); err == nil {
			t.Errorf("ParseSHA512(%q) succeeded", bad)
		}
	}
}

func TestOpenHome(t *testing.T) {
	dir := t.TempDir()
	if _, err := OpenHome(dir); err == nil || !strings.Contains(err.Error(), "bin/spark-class is missing") {
		t.Errorf("empty dir: %v", err)
	}
	os.MkdirAll(filepath.Join(dir, "bin"), 0o755)
	os.WriteFile(filepath.Join(dir, "bin/spark-class"), []byte("#!/bin/sh\n"), 0o755)
	os.WriteFile(filepath.Join(dir, "bin/spark-submit"), []byte("#!/bin/sh\n"), 0o644)
	if _, err := OpenHome(dir); err == nil || !strings.Contains(err.Error(), "not executable") {
		t.Errorf("non-executable spark-submit: %v", err)
	}
	os.Chmod(filepath.Join(dir, "bin/spark-submit"), 0o755)
	os.WriteFile(filepath.Join(dir, "RELEASE"), []byte("Spark 4.0.1 (git revision abc) built for Hadoop 3.4.1\n"), 0o644)
	d, err := OpenHome(dir)
	if err != nil || d.Version != "4.0.1" {
		t.Errorf("got %+v, %v", d, err)
	}
}

func TestFindJava(t *testing.T) {
	dir := t.TempDir()
	jdk := filepath.Join(dir, "jdk")
	os.MkdirAll(filepath.Join(jdk, "bin"), 0o755)
	os.WriteFile(filepath.Join(jdk, "bin/java"), []byte("#!/bin/sh\n"), 0o755)
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

	if h, err := FindJava(env(map[string]string{"JAVA_HOME": jdk})); err != nil || h != jdk {
		t.Errorf("JAVA_HOME: %q %v", h, err)
	}
	if h, err := FindJava(env(map[string]string{"PATH": "/nonexistent:" + filepath.Join(jdk, "bin")})); err != nil || h != jdk {
		t.Errorf("PATH: %q %v", h, err)
	}
	if _, err := FindJava(env(map[string]string{"JAVA_HOME": dir})); err == nil || !strings.Contains(err.Error(), "has no bin/java") {
		t.Errorf("bad JAVA_HOME: %v", err)
	}
	if _, err := FindJava(env(map[string]string{"PATH": dir})); !errors.Is(err, ErrNoJava) {
		t.Errorf("no java: %v", err)
	}
	if !strings.Contains(ErrNoJava.Error(), "JAVA_HOME") {
		t.Error("ErrNoJava must say how to mend it")
	}
}

func TestCheckJava(t *testing.T) {
	jdk := func(version string) string {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "release"), []byte("IMPLEMENTOR=\"x\"\nJAVA_VERSION=\""+version+"\"\n"), 0o644)
		return dir
	}
	for _, c := range []struct {
		java, spark string
		err, warn   bool
	}{
		{"17.0.15", "4.3.0", false, false},
		{"11.0.2", "4.3.0", true, false},
		{"1.8.0_392", "3.5.9", false, false},
		{"1.8.0_392", "4.0.1", true, false}, // any release of the 4 line needs 17
		{"25", "3.5.9", false, true},
		{"21.0.1", "4.3.0", false, false},
	} {
		home := jdk(c.java)
		warn, err := CheckJava(home, c.spark)
		var je *JavaError
		if c.err != errors.As(err, &je) || c.warn != (warn != "") {
			t.Errorf("Java %s, Spark %s: warning %q, error %v", c.java, c.spark, warn, err)
		}
		if c.err && !strings.Contains(err.Error(), "Spark "+c.spark+" needs Java 17 or later") {
			t.Errorf("the error does not say what is needed: %v", err)
		}
	}
}

// A pip-installed pyspark: no RELEASE file, the release in the spark-core jar's name.
func TestOpenHomePySpark(t *testing.T) {
	site := t.TempDir()
	home := filepath.Join(site, "pyspark")
	for _, f := range []string{"bin/spark-class", "bin/spark-submit"} {
		os.MkdirAll(filepath.Dir(filepath.Join(home, f)), 0o755)
		os.WriteFile(filepath.Join(home, f), []byte("#!/bin/sh\n"), 0o755)
	}
	os.MkdirAll(filepath.Join(home, "jars"), 0o755)
	os.WriteFile(filepath.Join(home, "jars", "spark-core_2.13-4.3.0.jar"), nil, 0o644)
	os.WriteFile(filepath.Join(home, "find_spark_home.py"), nil, 0o644)
	d, err := OpenHome(home)
	if err != nil || d.Version != "4.3.0" || d.Scala != "2.13" || !d.PySpark {
		t.Errorf("got %+v, %v", d, err)
	}
	if _, err := OpenHome(site); err == nil || !strings.Contains(err.Error(), "holds a pyspark package: use "+home) {
		t.Errorf("site-packages given: %v", err)
	}
}
