package cluster_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/sparkplane/sparkplane/internal/cluster"
	"github.com/sparkplane/sparkplane/internal/cluster/clustertest"
	"github.com/sparkplane/sparkplane/internal/provider/aws/awstest"
	"github.com/sparkplane/sparkplane/internal/spark"
	"github.com/sparkplane/sparkplane/internal/spark/sparktest"
)

// upperPy reads a text through S3A and writes it back upper-cased, as one part file.
const upperPy = `import sys
from pyspark.sql import SparkSession
spark = SparkSession.builder.appName("Upper").getOrCreate()
lines = spark.sparkContext.textFile(sys.argv[1]).map(lambda l: l.upper())
lines.coalesce(1).saveAsTextFile(sys.argv[2])
print("Upper: %d lines to %s" % (lines.count(), sys.argv[2]))
spark.stop()
`

// TestRealSparkS3 runs jobs that read and write s3a:// on a local cluster whose storage is
// moto's S3: the S3A connector resolved for the line's Hadoop (by Maven), on the class path of
// every Spark process, credentials from the environment through the SDK's default chain. A JVM
// job in cluster mode (its driver on a worker) and a Python one in client mode (its driver on
// the master's node) each read an object the test wrote; the test reads back what they wrote and
// checks it by content, also after destroy, which leaves results alone.
func TestRealSparkS3(t *testing.T) {
	moto := awstest.StartMoto(t)
	for _, kv := range moto.Env() { // what the agents, and so Spark, inherit
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	s3c := s3.NewFromConfig(moto.Config(), func(o *s3.Options) { o.UsePathStyle = true })
	forEachLine(t, func(t *testing.T, r realEnv) {
		ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
		defer cancel()
		bucket := "data-" + strings.ReplaceAll(r.line, ".", "-")
		if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &bucket,
			CreateBucketConfiguration: &s3types.CreateBucketConfiguration{LocationConstraint: s3types.BucketLocationConstraint(awstest.Region)}}); err != nil {
			t.Fatal(err)
		}
		local, want, _ := sparktest.WordsInput(t, "")
		text, err := os.ReadFile(local)
		if err != nil {
			t.Fatal(err)
		}
		putObject(t, ctx, s3c, bucket, "in/words.txt", string(text))

		e := r.newEnv(t)
		ref := cluster.Ref{Name: "s3"}
		c := clustertest.Spec(t, fmt.Sprintf("name: s3\nworkers: {count: 1, cores: 2, memory: 2g}\nstorage: {bucket: %s, endpoint: %q}\n"+
			"spark:\n  conf: {spark.executor.memory: 512m, spark.driver.memory: 512m}\n", bucket, moto.URL))
		t.Cleanup(func() { e.M.Destroy(context.Background(), ref) })
		if _, err := e.M.Create(ctx, c, cluster.CreateOptions{}); err != nil {
			t.Fatalf("%v\n%s", err, e.Rec)
		}
		if !strings.Contains(e.Rec.String(), "done S3A connector: hadoop-aws ") {
			t.Errorf("create's progress names no S3A connector:\n%s", e.Rec)
		}
		in := "s3a://" + bucket + "/in/words.txt"

		t.Run("JVM job in cluster mode", func(t *testing.T) {
			out := "s3a://" + bucket + "/out/jvm"
			clustertest.RunJob(t, ctx, e.M, ref, cluster.JobSpec{Application: r.jar, Class: wordCount, Args: []string{in, out}}, spark.ClusterMode,
				func(stdout string) error {
					if !strings.Contains(stdout, "WordCount: 9 distinct words, 12 words, written to "+out) {
						return fmt.Errorf("the driver did not report the count")
					}
					return nil
				})
			if got := readPart(t, ctx, s3c, bucket, "out/jvm/"); got != want {
				t.Errorf("counts in S3:\n%s\nwant:\n%s", got, want)
			}
		})

		t.Run("Python job in client mode", func(t *testing.T) {
			app := filepath.Join(t.TempDir(), "upper.py")
			if err := os.WriteFile(app, []byte(upperPy), 0o644); err != nil {
				t.Fatal(err)
			}
			out := "s3a://" + bucket + "/out/py"
			clustertest.RunJob(t, ctx, e.M, ref, cluster.JobSpec{Application: app, Args: []string{in, out}}, spark.ClientMode,
				func(stdout string) error {
					if !strings.Contains(stdout, "Upper: 3 lines to "+out) {
						return fmt.Errorf("the driver did not report its lines")
					}
					return nil
				})
			if got := readPart(t, ctx, s3c, bucket, "out/py/"); got != strings.ToUpper(string(text)) {
				t.Errorf("upper-cased text in S3: %q", got)
			}
		})

		if err := e.M.Destroy(ctx, ref); err != nil {
			t.Fatal(err)
		}
		e.NothingLeft(t, "s3")
		if got := readPart(t, ctx, s3c, bucket, "out/jvm/"); got != want {
			t.Errorf("after destroy, the counts in S3 are:\n%s", got)
		}
	})
}

func putObject(t *testing.T, ctx context.Context, s3c *s3.Client, bucket, key, body string) {
	t.Helper()
	if _, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: strings.NewReader(body)}); err != nil {
		t.Fatal(err)
	}
}

// readPart reads the one part file under prefix, which must also hold Hadoop's _SUCCESS marker.
func readPart(t *testing.T, ctx context.Context, s3c *s3.Client, bucket, prefix string) string {
	t.Helper()
	list, err := s3c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &bucket, Prefix: &prefix})
	if err != nil {
		t.Fatal(err)
	}
	var keys, parts []string
	for _, o := range list.Contents {
		keys = append(keys, aws.ToString(o.Key))
		if strings.HasPrefix(aws.ToString(o.Key), prefix+"part-") {
			parts = append(parts, aws.ToString(o.Key))
		}
	}
	if len(parts) != 1 || !slices.Contains(keys, prefix+"_SUCCESS") {
		t.Fatalf("s3://%s/%s holds %v, want one part file and _SUCCESS", bucket, prefix, keys)
	}
	obj, err := s3c.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &parts[0]})
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Body.Close()
	b, err := io.ReadAll(obj.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
