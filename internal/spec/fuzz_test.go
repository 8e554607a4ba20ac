package spec

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse feeds arbitrary bytes to the decoder. It must never panic; it must either return a
// spec that validates, or an ErrorList whose every entry says what is wrong.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.yaml")
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("apiVersion: sparkplane.dev/v1alpha1\nkind: Cluster\nname: a\nworkers: &w {count: 1}\nmaster: *w\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("fuzz.yaml", data, Options{DefaultName: "fuzz"})
		if err == nil {
			if c == nil {
				t.Fatal("nil spec without an error")
			}
			if verr := Validate(c); verr != nil {
				t.Fatalf("Parse accepted a spec that Validate refuses: %v", verr)
			}
			return
		}
		var list ErrorList
		if !errors.As(err, &list) {
			t.Fatalf("error is %T, not ErrorList: %v", err, err)
		}
		for _, fe := range list {
			if strings.TrimSpace(fe.Msg) == "" {
				t.Fatalf("empty error message in %v", err)
			}
		}
	})
}
