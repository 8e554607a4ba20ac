package spark

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// FindPySpark returns the Spark inside the pyspark package that python imports (a pip-installed
// pyspark is a whole Spark distribution), or an error saying why there is none.
func FindPySpark(ctx context.Context, python string) (*Distribution, error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	// pyspark/__init__.py imports py4j and more; find_spec only locates the package.
	const script = "import importlib.util, os\n" +
		"s = importlib.util.find_spec('pyspark')\n" +
		"print(os.path.dirname(os.path.realpath(s.origin)) if s and s.origin else '')\n"
	var out, errOut bytes.Buffer
	cmd := exec.CommandContext(ctx, python, "-c", script)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s: %v %s", python, err, strings.TrimSpace(errOut.String()))
	}
	home := strings.TrimSpace(out.String())
	if home == "" {
		return nil, fmt.Errorf("%s cannot import pyspark", python)
	}
	d, err := OpenHome(home)
	if err != nil {
		return nil, fmt.Errorf("the pyspark of %s: %w", python, err)
	}
	d.From = "the pyspark of " + python
	return d, nil
}
