package aws_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/sparkplane/sparkplane/internal/provider"
	"github.com/sparkplane/sparkplane/internal/provider/aws/awstest"
	"github.com/sparkplane/sparkplane/internal/provider/providertest"
	"github.com/sparkplane/sparkplane/internal/spark"
	"github.com/sparkplane/sparkplane/internal/spark/sparktest"
	"github.com/sparkplane/sparkplane/internal/spec"
	"github.com/sparkplane/sparkplane/internal/testutil"
)

// TestAWSConformanceOnRealSpark runs the suite every provider passes, against moto with booted
// agents running real Spark of the oldest line (TestAWSLifecycleOnRealSpark runs the newest).
func TestAWSConformanceOnRealSpark(t *testing.T) {
	t.Parallel() // each test has a moto and a Terraform of its own
	home := sparktest.RealHome(t, sparktest.Oldest())
	e := newEnv(t, home)
	awstest.Boot(t, e.moto, testutil.Build(t, "github.com/sparkplane/sparkplane/cmd/sparkplane"), "")
	dist, err := spark.OpenHome(home)
	if err != nil {
		t.Fatal(err)
	}
	providertest.Run(t, providertest.Harness{
		Provider: e.p,
		Spec: func(name string, workers int) *spec.Cluster {
			return e.spec(t, name, "", fmt.Sprintf("workers: {count: %d, max: 6}\n", workers))
		},
		Options: func(t *testing.T) provider.CreateOptions { return provider.CreateOptions{Spark: dist} },
		Timeout: 3 * time.Minute,
	})
}
