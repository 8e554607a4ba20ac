package terraform_test

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// The module's README documents every input and output the module has, and no other.
func TestReadmeDocumentsEveryInputAndOutput(t *testing.T) {
	readme, err := os.ReadFile("aws/README.md")
	if err != nil {
		t.Fatal(err)
	}
	inputs, outputs, ok := strings.Cut(string(readme), "## Outputs")
	if !ok {
		t.Fatal("aws/README.md has no Outputs section")
	}
	_, inputs, _ = strings.Cut(inputs, "## Inputs")
	row := regexp.MustCompile("(?m)^\\| `([a-z0-9_]+)` \\|")
	for _, c := range []struct{ file, kind, section string }{{"aws/variables.tf", "variable", inputs}, {"aws/outputs.tf", "output", outputs}} {
		documented := map[string]bool{}
		for _, m := range row.FindAllStringSubmatch(c.section, -1) {
			documented[m[1]] = true
		}
		src, err := os.ReadFile(c.file)
		if err != nil {
			t.Fatal(err)
		}
		names := regexp.MustCompile(`(?m)^`+c.kind+` "([a-z0-9_]+)"`).FindAllStringSubmatch(string(src), -1)
		if len(names) == 0 {
			t.Fatalf("no %s in %s", c.kind, c.file)
		}
		for _, m := range names {
			if !documented[m[1]] {
				t.Errorf("aws/README.md does not document the %s %s", c.kind, m[1])
			}
			delete(documented, m[1])
		}
		for name := range documented {
			t.Errorf("aws/README.md documents the %s %s, which the module does not have", c.kind, name)
		}
	}
}
