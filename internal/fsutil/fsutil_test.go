package fsutil

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "f.json")
	for _, content := range []string{"first", "second"} {
		if err := WriteFileAtomic(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(path); string(b) != content {
			t.Errorf("read %q, want %q", b, content)
		}
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", st.Mode())
	}
	if es, _ := os.ReadDir(filepath.Dir(path)); len(es) != 1 {
		t.Errorf("temporary files left: %v", es)
	}
}

func TestTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	os.WriteFile(path, []byte("a\nb\nc\n"), 0o644)
	if got, err := Tail(path, 2); err != nil || got != "b\nc" {
		t.Errorf("Tail = %q, %v", got, err)
	}
	if got, _ := Tail(path, 10); got != "a\nb\nc" {
		t.Errorf("Tail of a short file = %q", got)
	}
	if _, err := Tail(filepath.Join(t.TempDir(), "none"), 2); err == nil {
		t.Error("no error for a missing file")
	}
}

func TestJSONFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "rec.json")
	type rec struct{ Name string }
	if err := ReadJSON(path, &rec{}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a missing file: %v, want os.ErrNotExist", err)
	}
	if err := WriteJSON(path, rec{Name: "x"}, 0o600); err != nil {
		t.Fatal(err)
	}
	var got rec
	if err := ReadJSON(path, &got); err != nil || got.Name != "x" {
		t.Errorf("round trip: %+v %v", got, err)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", st.Mode())
	}
	os.WriteFile(path, []byte("{"), 0o600)
	if err := ReadJSON(path, &got); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("a malformed file: %v, want an error naming it", err)
	}
}
