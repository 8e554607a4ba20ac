package spark_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sparkplane/sparkplane/internal/spark"
	"github.com/sparkplane/sparkplane/internal/spark/sparktest"
	"github.com/sparkplane/sparkplane/internal/testutil"
)

func TestJarArtifact(t *testing.T) {
	for name, want := range map[string]string{
		"hadoop-aws-3.5.0.jar": "hadoop-aws", "aws-java-sdk-s3-1.12.262.jar": "aws-java-sdk-s3",
		"netty-transport-native-epoll-4.2.13.Final-linux-x86_64.jar": "netty-transport-native-epoll",
		"log4j-slf4j2-impl-2.25.4.jar":                               "log4j-slf4j2-impl", "netty-codec-http2-4.1.126.Final.jar": "netty-codec-http2",
		"py4j.jar": "py4j",
	} {
		if got := spark.JarArtifact(name); got != want {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
}

// TestResolveConnector resolves the S3A connector of each tested line's real distribution with
// real Maven: hadoop-aws of the Hadoop inside it, the SDK's modules in place of its bundle, no jar
// the distribution has already; then takes it from the cache, and refuses it once a jar changed.
func TestResolveConnector(t *testing.T) {
	testutil.Tool(t, "mvn", "apt install maven")
	ctx := context.Background()
	for _, line := range sparktest.Lines() {
		t.Run("Spark"+line, func(t *testing.T) {
			home := sparktest.RealHome(t, line)
			hadoop, err := spark.HadoopVersion(home)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(filepath.Join(home, "jars", "hadoop-client-api-"+hadoop+".jar")); err != nil {
				t.Fatalf("Hadoop %s: %v", hadoop, err)
			}
			cache := t.TempDir()
			var progress []string
			c, err := spark.ResolveConnector(ctx, spark.ConnectorOptions{Home: home, CacheDir: cache, Progress: func(s string) { progress = append(progress, s) }})
			if err != nil {
				t.Fatal(err)
			}
			if c.Hadoop != hadoop || len(progress) != 1 || !strings.Contains(progress[0], "org.apache.hadoop:hadoop-aws:"+hadoop) {
				t.Errorf("connector for Hadoop %s: %+v, progress %q", hadoop, c, progress)
			}
			wantGroup := "com.amazonaws:" // Hadoop 3.3 is built on the AWS SDK for Java 1, 3.4 and later on 2
			if !strings.HasPrefix(hadoop, "3.3.") {
				wantGroup = "software.amazon.awssdk:"
			}
			if !strings.HasPrefix(c.SDK, wantGroup) || c.SDKv2() != (wantGroup != "com.amazonaws:") {
				t.Errorf("SDK %q, want %s…", c.SDK, wantGroup)
			}
			has, err := spark.DistArtifacts(filepath.Join(home, "jars"))
			if err != nil || len(has) < 100 {
				t.Fatalf("the distribution's artifacts: %d, %v", len(has), err)
			}
			names := map[string]bool{}
			for _, j := range c.Jars {
				names[j.Name] = true
				ga := j.Coords[:strings.LastIndex(j.Coords, ":")]
				if has[ga] {
					t.Errorf("%s is in the distribution already", j.Coords)
				}
				if strings.HasSuffix(ga, ":bundle") || strings.HasSuffix(ga, ":aws-java-sdk-bundle") {
					t.Errorf("the whole SDK bundle is there: %s", j.Coords)
				}
			}
			if !names["hadoop-aws-"+hadoop+".jar"] || (wantGroup == "software.amazon.awssdk:" && !names["s3-"+strings.TrimPrefix(c.SDK, wantGroup)+".jar"]) {
				t.Errorf("jars: %v", names)
			}
			// The bundles are 268 MB (1.12.262) and 686 MB (2.35.4); the modules are a few MB.
			if c.Bytes() > 20e6 {
				t.Errorf("the connector is %d bytes", c.Bytes())
			}

			again, err := spark.ResolveConnector(ctx, spark.ConnectorOptions{Home: home, CacheDir: cache, Maven: "/no/such/mvn"})
			if err != nil || again.Dir != c.Dir || len(again.Jars) != len(c.Jars) {
				t.Fatalf("from the cache: %+v %v", again, err)
			}
			if err := os.WriteFile(filepath.Join(c.Dir, "hadoop-aws-"+hadoop+".jar"), []byte("not a jar"), 0o644); err != nil {
				t.Fatal(err)
			}
			var sum *spark.ChecksumError
			if _, err := spark.OpenConnector(c.Dir); !errors.As(err, &sum) {
				t.Errorf("a changed jar: %v", err)
			}
			if _, err := spark.ResolveConnector(ctx, spark.ConnectorOptions{Home: home, CacheDir: cache, Maven: "/no/such/mvn"}); err == nil || !strings.Contains(err.Error(), "needs Maven") {
				t.Errorf("a changed cache and no Maven: %v", err)
			}
		})
	}
}
