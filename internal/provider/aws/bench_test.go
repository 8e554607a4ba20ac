package aws_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go/middleware"
	"github.com/hashicorp/terraform-exec/tfexec"

	"github.com/sparkplane/sparkplane/internal/cluster"
	sparkaws "github.com/sparkplane/sparkplane/internal/provider/aws"
	"github.com/sparkplane/sparkplane/internal/provider/aws/awstest"
	"github.com/sparkplane/sparkplane/internal/spark/sparktest"
	"github.com/sparkplane/sparkplane/internal/spec"
	"github.com/sparkplane/sparkplane/internal/testutil"
)

// counting adds a middleware to an SDK configuration that counts the operations it calls.
func counting(cfg aws.Config, n *atomic.Int64) aws.Config {
	cfg.APIOptions = append(cfg.APIOptions, func(stack *middleware.Stack) error {
		return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("countCalls",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				n.Add(1)
				return next.HandleInitialize(ctx, in)
			}), middleware.After)
	})
	return cfg
}

// BenchmarkCreateDestroy measures a whole cluster's create (secrets, uploads, apply, the master's
// agent up and every worker in Spark) and destroy against moto, with every instance booted into
// an agent, and the AWS API calls one status makes. Its nodes run the stand-in, so that fifty of
// them fit on one machine: it measures sparkplane and Terraform, not Spark's start (which
// BenchmarkRealSpark in internal/cluster measures). Run it with -benchtime 1x:
//
//	go test -run '^$' -bench CreateDestroy -benchtime 1x -timeout 60m ./internal/provider/aws
func BenchmarkCreateDestroy(b *testing.B) {
	for _, workers := range []int{3, 50} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			var calls atomic.Int64
			for range b.N {
				e := newEnv(b, sparktest.Home(b, "3.5.3"), func(o *sparkaws.Options) {
					cfg := o.AWSConfig
					o.AWSConfig = func(ctx context.Context, region string) (aws.Config, error) {
						c, err := cfg(ctx, region)
						return counting(c, &calls), err
					}
					o.AgentWait = 10 * time.Minute
				})
				e.m.ReadyTimeout = 10 * time.Minute
				boot := awstest.Boot(b, e.moto, testutil.Build(b, "github.com/sparkplane/sparkplane/cmd/sparkplane"), "bench")
				c := e.spec(b, "bench", "", fmt.Sprintf("workers: {count: %d, max: %d, spot: true, instanceTypes: [m5.xlarge, m5a.xlarge]}\n", workers, workers))
				ref := cluster.Ref{Name: "bench", Provider: "aws"}
				ctx := context.Background()

				start := time.Now()
				st, err := e.m.Create(ctx, c, cluster.CreateOptions{})
				if err != nil {
					b.Fatalf("create: %v\n%s", err, boot.Logs())
				}
				created := time.Since(start)
				if st.Agent.AliveWorkers() != workers {
					b.Fatalf("%d workers alive after create", st.Agent.AliveWorkers())
				}

				calls.Store(0)
				if _, err := e.m.Status(ctx, ref); err != nil {
					b.Fatal(err)
				}
				statusCalls := calls.Load()

				start = time.Now()
				if err := e.m.Destroy(ctx, ref); err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(created.Seconds(), "create-s")
				b.ReportMetric(time.Since(start).Seconds(), "destroy-s")
				b.ReportMetric(float64(statusCalls), "status-aws-calls")
			}
		})
	}
}

// BenchmarkPlainTerraform applies the same topology with Terraform alone, from the root module
// export terraform writes, for comparison with BenchmarkCreateDestroy: no uploads, no secrets,
// no waiting for agents.
func BenchmarkPlainTerraform(b *testing.B) {
	for _, workers := range []int{3, 50} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			for range b.N {
				tf := awstest.Terraform(b)
				moto := awstest.StartMoto(b)
				ctx := context.Background()
				s3c := s3.NewFromConfig(moto.Config(), func(o *s3.Options) { o.UsePathStyle = true })
				if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("bench-data"),
					CreateBucketConfiguration: &s3types.CreateBucketConfiguration{LocationConstraint: s3types.BucketLocationConstraint(awstest.Region)}}); err != nil {
					b.Fatal(err)
				}
				c := planSpec(b, moto, workers)
				dir := b.TempDir()
				if _, err := sparkaws.Export(c, dir, false); err != nil {
					b.Fatal(err)
				}
				x, err := tfexec.NewTerraform(dir, tf)
				if err != nil {
					b.Fatal(err)
				}
				if err := x.Init(ctx); err != nil {
					b.Fatal(err)
				}
				start := time.Now()
				if err := x.Apply(ctx); err != nil {
					b.Fatal(err)
				}
				applied := time.Since(start)
				start = time.Now()
				if err := x.Destroy(ctx); err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(applied.Seconds(), "apply-s")
				b.ReportMetric(time.Since(start).Seconds(), "destroy-s")
				os.RemoveAll(filepath.Join(dir, ".terraform"))
			}
		})
	}
}

func planSpec(t testing.TB, moto *awstest.Moto, workers int) *spec.Cluster {
	return (&env{moto: moto}).spec(t, "bench", "", fmt.Sprintf("storage: {bucket: bench-data}\nworkers: {count: %d, max: %d, spot: true, instanceTypes: [m5.xlarge, m5a.xlarge]}\n", workers, workers))
}
