package spec

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sparkplane/sparkplane/internal/spark"
)

func TestValidFixtures(t *testing.T) {
	files, _ := filepath.Glob("testdata/valid-*.yaml")
	if len(files) == 0 {
		t.Fatal("no valid fixtures")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			c, err := LoadFile(f, Options{})
			if err != nil {
				t.Fatalf("LoadFile: %v", err)
			}
			if err := Validate(c); err != nil {
				t.Fatalf("a loaded spec must validate again: %v", err)
			}
		})
	}
}

// Every invalid fixture states the errors it must produce in "# want:" lines, positions included.
func TestInvalidFixtures(t *testing.T) {
	files, _ := filepath.Glob("testdata/invalid-*.yaml")
	if len(files) == 0 {
		t.Fatal("no invalid fixtures")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var wants []string
			for _, line := range strings.Split(string(data), "\n") {
				if w, ok := strings.CutPrefix(line, "# want: "); ok {
					wants = append(wants, strings.ReplaceAll(w, filepath.Base(f), f))
				}
			}
			if len(wants) == 0 {
				t.Fatal("fixture has no # want: line")
			}
			_, err = LoadFile(f, Options{})
			if err == nil {
				t.Fatal("LoadFile succeeded; want an error")
			}
			var list ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("error is %T, want ErrorList: %v", err, err)
			}
			if len(list) != len(wants) {
				t.Errorf("got %d errors, want %d:\n%v", len(list), len(wants), err)
			}
			for _, w := range wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain\n  %s\ngot:\n  %v", w, err)
				}
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	c, err := Default(Options{DefaultName: "spark"})
	if err != nil {
		t.Fatal(err)
	}
	want := &Cluster{
		Name:      "spark",
		Provider:  "local",
		Spark:     Spark{Version: DefaultSparkVersion, Authenticate: true, Submit: SubmitSparkSubmit},
		Workers:   Workers{Count: 2, Min: 0, Max: 10, Cores: 2, MemoryMiB: 2048},
		Autoscale: Autoscale{Policy: PolicyOff, Interval: 10 * time.Second},
	}
	c.Origin = nil
	if !reflect.DeepEqual(c, want) {
		t.Errorf("defaults:\n got %+v\nwant %+v", c, want)
	}
}

func TestDefaultNeedsName(t *testing.T) {
	_, err := Default(Options{})
	if err == nil || !strings.Contains(err.Error(), "name: required") {
		t.Fatalf("want a name-required error, got %v", err)
	}
}

func TestFullSpecValues(t *testing.T) {
	c, err := LoadFile("testdata/valid-full-aws.yaml", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Provider != "aws" || c.Workers.Max != 40 || !c.Workers.Spot || len(c.Workers.InstanceTypes) != 3 {
		t.Errorf("workers: %+v", c.Workers)
	}
	if c.Lifetime.IdleTimeout != 30*time.Minute || c.Lifetime.MaxAge != 12*time.Hour {
		t.Errorf("lifetime: %+v", c.Lifetime)
	}
	if c.AWS == nil || c.AWS.Zones != 3 || c.AWS.Region != "eu-west-1" || c.AWS.AllowedCIDRs[0] != "203.0.113.0/24" {
		t.Errorf("aws: %+v", c.AWS)
	}
	if c.Spark.Conf["spark.eventLog.enabled"] != "true" {
		t.Errorf("conf: %v", c.Spark.Conf)
	}
	if p := c.Origin.Pos("workers.max"); p.Line != 12 || p.Column != 8 {
		t.Errorf("position of workers.max = %v, want line 12 column 8", p)
	}
}

func TestLocalTuned(t *testing.T) {
	c, err := LoadFile("testdata/valid-local-tuned.yaml", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Workers.MemoryMiB != 1536 || c.Workers.Cores != 2 || c.Workers.Count != 3 {
		t.Errorf("workers: %+v", c.Workers)
	}
	if c.Spark.Conf["spark.sql.shuffle.partitions"] != "8" || c.Spark.Conf["spark.eventLog.enabled"] != "true" {
		t.Errorf("conf values must be taken as written: %v", c.Spark.Conf)
	}
	if c.Lifetime.IdleTimeout != 24*time.Hour {
		t.Errorf("idleTimeout = %v", c.Lifetime.IdleTimeout)
	}
}

func TestOverrides(t *testing.T) {
	set := func(s string) Override {
		o, err := SetFlag(s)
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	c, err := LoadFile("testdata/valid-minimal.yaml", Options{Overrides: []Override{
		set("workers.count=5"),
		set("spark.conf.spark.executor.memory=2g"),
		set("lifetime.maxAge=2h"),
		{Path: []string{"name"}, Value: "other", Flag: "-n other"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if c.Workers.Count != 5 || c.Spark.Conf["spark.executor.memory"] != "2g" || c.Lifetime.MaxAge != 2*time.Hour || c.Name != "other" {
		t.Errorf("overrides not applied: %+v", c)
	}

	_, err = LoadFile("testdata/valid-minimal.yaml", Options{Overrides: []Override{set("workers.cout=5")}})
	want := `flag --set workers.cout=5: workers.cout: unknown field "cout" (did you mean "count"?)`
	if err == nil || err.Error() != want {
		t.Errorf("misspelled override:\n got %v\nwant %s", err, want)
	}
	_, err = LoadFile("testdata/valid-minimal.yaml", Options{Overrides: []Override{set("workers.max=1"), set("workers.count=3")}})
	if err == nil || !strings.Contains(err.Error(), "flag --set workers.count=3: workers.count: count 3 is above max 1") {
		t.Errorf("validation error of an override must name the flag: %v", err)
	}
	_, err = LoadFile("testdata/valid-minimal.yaml", Options{Overrides: []Override{set("name.first=x")}})
	if err == nil || !strings.Contains(err.Error(), "name: is a single value") {
		t.Errorf("override through a scalar: %v", err)
	}
	if _, err := SetFlag("novalue"); err == nil {
		t.Error("SetFlag without = must fail")
	}
}

func TestParseMemory(t *testing.T) {
	for in, want := range map[string]int{"512m": 512, "2g": 2048, "1536M": 1536, "1G": 1024, "2gb": 2048, "1t": 1 << 20, "2048k": 2} {
		got, err := ParseMemoryMiB(in)
		if err != nil || got != want {
			t.Errorf("ParseMemoryMiB(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "2", "g", "-1g", "1.5g", "0m", "1x"} {
		if _, err := ParseMemoryMiB(in); err == nil {
			t.Errorf("ParseMemoryMiB(%q) succeeded", in)
		}
	}
	if FormatMemory(2048) != "2g" || FormatMemory(1536) != "1536m" {
		t.Error("FormatMemory")
	}
}

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{"90s": 90 * time.Second, "1d": 24 * time.Hour, "2d12h": 60 * time.Hour, "1h30m": 90 * time.Minute} {
		got, err := ParseDuration(in)
		if err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "d", "1d2", "thirty", "99999d"} {
		if _, err := ParseDuration(in); err == nil {
			t.Errorf("ParseDuration(%q) succeeded", in)
		}
	}
}

// Every example shipped for users must load.
func TestExamplesLoad(t *testing.T) {
	files, _ := filepath.Glob("../../examples/*.yaml")
	if len(files) == 0 {
		t.Fatal("no examples found")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			if _, err := LoadFile(f, Options{}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// The spec reference must describe every field the decoder accepts, and the YAML example in it
// must load.
func TestReferenceDoc(t *testing.T) {
	doc, err := os.ReadFile("../../docs/spec.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range fieldPaths(reflect.TypeOf(clusterV1{}), "") {
		if !strings.Contains(string(doc), "`"+p+"`") {
			t.Errorf("docs/spec.md does not describe `%s`", p)
		}
	}
	text := string(doc)
	// The defaults it gives are the binary's.
	for _, m := range spark.DefaultMirrors {
		if !strings.Contains(text, "`"+m+"`") {
			t.Errorf("docs/spec.md does not give the default mirror %s", m)
		}
	}
	if !strings.Contains(text, "| `spark.version` | `"+DefaultSparkVersion+"` |") {
		t.Errorf("docs/spec.md does not give the default spark.version %s", DefaultSparkVersion)
	}
	start := strings.Index(text, "```yaml\n")
	if start < 0 {
		t.Fatal("docs/spec.md has no yaml example")
	}
	body := text[start+len("```yaml\n"):]
	body = body[:strings.Index(body, "```")]
	if _, err := Parse("docs/spec.md", []byte(body), Options{}); err != nil {
		t.Fatalf("the example in docs/spec.md does not load: %v", err)
	}
}

func TestStoragePathIsResolvedAgainstTheSpec(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "c.yaml")
	os.WriteFile(file, []byte("apiVersion: sparkplane.dev/v1alpha1\nkind: Cluster\nname: c\nstorage: {path: logs/events}\n"), 0o644)
	c, err := LoadFile(file, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "logs", "events"); c.Storage.Path != want {
		t.Errorf("storage.path = %q, want %q", c.Storage.Path, want)
	}
	c, err = Default(Options{DefaultName: "d", Overrides: []Override{{Path: []string{"storage", "path"}, Value: "/abs/events"}}})
	if err != nil || c == nil || c.Storage.Path != "/abs/events" {
		t.Errorf("absolute path: %q %v", c.Storage.Path, err)
	}
}

// longSpec is a spec of about size bytes (a long spark.conf) whose last line breaks the YAML the
// way invalid-syntax.yaml does; it returns the spec and that line's number.
func longSpec(size int) ([]byte, int) {
	var b strings.Builder
	b.WriteString("apiVersion: sparkplane.dev/v1alpha1\nkind: Cluster\nname: big\nspark:\n  conf:\n")
	lines := 5
	for i := 0; b.Len() < size; i++ {
		fmt.Fprintf(&b, "    spark.sparkplane.test.%d: value-%d\n", i, i)
		lines++
	}
	b.WriteString("   bad: 3\n")
	return []byte(b.String()), lines + 1
}

// A syntax error at the end of a long spec is found where it is (not where its block began),
// and quickly: the search for the line parses a handful of prefixes, not one per line.
func TestSyntaxErrorAtTheEndOfALongSpec(t *testing.T) {
	data, line := longSpec(256 << 10)
	_, err := Parse("big.yaml", data, Options{})
	if want := fmt.Sprintf("big.yaml:%d: YAML syntax", line); err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("got %v, want %q", err, want)
	}
}

func TestSpecOverMaxSizeIsRefused(t *testing.T) {
	data := append([]byte("apiVersion: sparkplane.dev/v1alpha1\nkind: Cluster\nname: big\n# "), bytes.Repeat([]byte("x"), MaxSize)...)
	path := filepath.Join(t.TempDir(), "big.yaml")
	os.WriteFile(path, data, 0o644)
	_, err := LoadFile(path, Options{})
	if err == nil || !strings.Contains(err.Error(), "big.yaml:1: the spec is over 4 MiB") || !strings.Contains(err.Error(), "check that this is the file you meant") {
		t.Fatalf("got %v", err)
	}
}

// BenchmarkSyntaxErrorIn1MB: the time to report a syntax error on the last line of a 1 MB spec.
func BenchmarkSyntaxErrorIn1MB(b *testing.B) {
	data, _ := longSpec(1 << 20)
	for b.Loop() {
		if _, err := Parse("big.yaml", data, Options{}); err == nil {
			b.Fatal("no error")
		}
	}
}
