package spark

import (
	"archive/zip"
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/sparkplane/sparkplane/internal/fsutil"
)

// Connector is Hadoop's S3A connector for one Spark distribution: the hadoop-aws release of the
// Hadoop inside it and the AWS SDK modules that release needs, without the jars the distribution
// has already. Neither Apache's Spark tarball nor PyPI's pyspark has it.
//
// It is resolved by Maven coordinates on the machine that creates a cluster (ResolveConnector),
// kept in a cache directory per Hadoop version, and put on the class path of every Spark process
// of a node (NodeEnv.DistClassPath), so that nodes need no internet.
type Connector struct {
	// Dir holds the jars and ConnectorManifest.
	Dir string `json:"-"`
	// Hadoop is the distribution's Hadoop, and so hadoop-aws's version.
	Hadoop string `json:"hadoop"`
	// SDK is the AWS SDK hadoop-aws was built with: "com.amazonaws:1.12.262" (v1) or
	// "software.amazon.awssdk:2.35.4" (v2).
	SDK  string         `json:"sdk"`
	Jars []ConnectorJar `json:"jars"`
}

// ConnectorJar is one jar of a Connector.
type ConnectorJar struct {
	Name   string `json:"name"`
	Coords string `json:"coords"` // group:artifact:version
	SHA256 string `json:"sha256"`
	Bytes  int64  `json:"bytes"`
}

// ConnectorManifest names the connector's jars in its directory.
const ConnectorManifest = "connector.json"

// Bytes is the connector's size.
func (c *Connector) Bytes() int64 {
	var n int64
	for _, j := range c.Jars {
		n += j.Bytes
	}
	return n
}

// ClassPath is the connector's entry for a Java class path.
func (c *Connector) ClassPath() string { return filepath.Join(c.Dir, "*") }

// SDKv2 says that the connector is built on the AWS SDK for Java 2 (Hadoop 3.4 and later).
func (c *Connector) SDKv2() bool { return strings.HasPrefix(c.SDK, sdkV2Group+":") }

// CredentialsProvider is the AWS SDK's default provider chain in the connector's SDK: the
// environment, the shared profile (SSO included), a container's and an instance's role. The
// chain reads them where they are, so no key is written for Spark.
func (c *Connector) CredentialsProvider() string {
	if c.SDKv2() {
		return "software.amazon.awssdk.auth.credentials.DefaultCredentialsProvider"
	}
	return "com.amazonaws.auth.DefaultAWSCredentialsProviderChain"
}

// The AWS SDKs' Maven groups, the bundles hadoop-aws depends on, and the modules that are
// enough for S3A in their place (the bundles hold every AWS service: 268 MB for 1.12.262,
// 686 MB for 2.35.4). STS is for assumed roles, SSO for profiles that sign in through it.
const (
	sdkV1Group = "com.amazonaws"
	sdkV2Group = "software.amazon.awssdk"
)

var sdkModules = map[string]struct {
	bundle  string
	modules []string
}{
	// S3A 3.3's S3Guard classes name DynamoDB's exceptions, so it is loaded even with no S3Guard.
	sdkV1Group: {"aws-java-sdk-bundle", []string{"aws-java-sdk-s3", "aws-java-sdk-dynamodb", "aws-java-sdk-sts", "aws-java-sdk-sso", "aws-java-sdk-ssooidc"}},
	sdkV2Group: {"bundle", []string{"s3", "s3-transfer-manager", "sts", "sso", "apache-client"}},
}

// mavenDependencyPlugin is the plugin release ResolveConnector runs; pinned, as a build would.
const mavenDependencyPlugin = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"

// recipe names how connectors are made (the modules, the plugin), so that a cache made another
// way is not taken for one made this way.
func recipe() string {
	h := sha256.New()
	fmt.Fprintln(h, mavenDependencyPlugin)
	for _, g := range slices.Sorted(maps.Keys(sdkModules)) {
		fmt.Fprintln(h, g, sdkModules[g].bundle, sdkModules[g].modules)
	}
	return hex.EncodeToString(h.Sum(nil))[:8]
}

// hadoopJarRe reads the Hadoop version from the jars of a distribution built with Hadoop
// (hadoop-client-api-3.3.4.jar; hadoop-common-3.3.4.jar in older layouts).
var hadoopJarRe = regexp.MustCompile(`^hadoop-(?:client-api|common)-(\d+\.\d+\.\d+)\.jar$`)

// HadoopVersion reads the version of the Hadoop inside a distribution from its jars.
func HadoopVersion(home string) (string, error) {
	entries, err := os.ReadDir(filepath.Join(home, "jars"))
	if err != nil {
		return "", fmt.Errorf("%s has no jars directory: %w", home, err)
	}
	for _, e := range entries {
		if m := hadoopJarRe.FindStringSubmatch(e.Name()); m != nil {
			return m[1], nil
		}
	}
	return "", fmt.Errorf("%s holds no Hadoop client jar (hadoop-client-api-*.jar): a Spark built without Hadoop needs the connector of the Hadoop it runs with, which sparkplane cannot tell", filepath.Join(home, "jars"))
}

// ConnectorOptions say where to resolve and keep a connector.
type ConnectorOptions struct {
	Home     string // the distribution's SPARK_HOME
	CacheDir string // connectors are kept in CacheDir/hadoop-<version>
	Maven    string // the mvn executable; "mvn" on PATH when empty
	// Progress, when set, hears that a connector is being resolved (it is not when cached).
	Progress func(line string)
}

// ResolveConnector returns the S3A connector for the distribution at o.Home: the cached one when
// its jars still match their checksums, else one resolved by Maven (strict checksums), with the
// jars the distribution already has left out so that Spark's own versions stay the only ones.
func ResolveConnector(ctx context.Context, o ConnectorOptions) (*Connector, error) {
	hadoop, err := HadoopVersion(o.Home)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(o.CacheDir, "hadoop-"+hadoop+"-"+recipe())
	if c, err := OpenConnector(dir); err == nil {
		return c, nil
	}
	if err := os.MkdirAll(o.CacheDir, 0o755); err != nil {
		return nil, err
	}
	unlock, err := lockFile(ctx, filepath.Join(o.CacheDir, ".lock-hadoop-"+hadoop))
	if err != nil {
		return nil, err
	}
	defer unlock()
	if c, err := OpenConnector(dir); err == nil { // made while we waited
		return c, nil
	}
	mvn := o.Maven
	if mvn == "" {
		mvn = "mvn"
	}
	if mvn, err = exec.LookPath(mvn); err != nil {
		return nil, fmt.Errorf("resolving Hadoop's S3A connector (org.apache.hadoop:hadoop-aws:%s) needs Maven: install it (apt install maven, brew install maven) and run again: %w", hadoop, err)
	}
	if o.Progress != nil {
		o.Progress(fmt.Sprintf("resolving org.apache.hadoop:hadoop-aws:%s and the AWS SDK modules it needs with Maven", hadoop))
	}
	work, err := os.MkdirTemp(o.CacheDir, ".resolve-hadoop-"+hadoop+"-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	m := maven{bin: mvn, dir: work}

	// Which SDK, and which release of it, this hadoop-aws was built with: from its dependency
	// tree, which Maven builds from POMs alone (the bundle itself is not downloaded).
	if err := m.writePOM(hadoop, "", ""); err != nil {
		return nil, err
	}
	if err := m.run(ctx, mavenDependencyPlugin+":tree", "-DoutputFile="+filepath.Join(work, "tree.txt")); err != nil {
		return nil, fmt.Errorf("the dependencies of org.apache.hadoop:hadoop-aws:%s: %w", hadoop, err)
	}
	group, sdk, err := bundleOf(filepath.Join(work, "tree.txt"))
	if err != nil {
		return nil, fmt.Errorf("org.apache.hadoop:hadoop-aws:%s: %w", hadoop, err)
	}
	if err := m.writePOM(hadoop, group, sdk); err != nil {
		return nil, err
	}
	list := filepath.Join(work, "list.txt")
	if err := m.run(ctx, mavenDependencyPlugin+":list", "-DoutputFile="+list, "-DincludeScope=runtime", "-DoutputAbsoluteArtifactFilename=true"); err != nil {
		return nil, fmt.Errorf("resolve org.apache.hadoop:hadoop-aws:%s with %s %s: %w", hadoop, group, sdk, err)
	}
	artifacts, err := readDependencyList(list)
	if err != nil {
		return nil, err
	}
	has, err := distArtifacts(filepath.Join(o.Home, "jars"))
	if err != nil {
		return nil, err
	}
	out := filepath.Join(work, "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		return nil, err
	}
	c := &Connector{Hadoop: hadoop, SDK: group + ":" + sdk}
	for _, a := range artifacts {
		if has[a.group+":"+a.artifact] {
			continue // Spark's own release of it wins
		}
		name := filepath.Base(a.path)
		sum, n, err := copyHashed(a.path, filepath.Join(out, name))
		if err != nil {
			return nil, err
		}
		c.Jars = append(c.Jars, ConnectorJar{Name: name, Coords: a.group + ":" + a.artifact + ":" + a.version, SHA256: sum, Bytes: n})
	}
	slices.SortFunc(c.Jars, func(a, b ConnectorJar) int { return strings.Compare(a.Name, b.Name) })
	if err := fsutil.WriteJSON(filepath.Join(out, ConnectorManifest), c, 0o644); err != nil {
		return nil, err
	}
	os.RemoveAll(dir) // a connector that failed its checksums
	if err := os.Rename(out, dir); err != nil {
		return nil, err
	}
	c.Dir = dir
	return c, nil
}

// OpenConnector reads the connector in dir and checks every jar against its manifest.
func OpenConnector(dir string) (*Connector, error) {
	var c Connector
	b, err := os.ReadFile(filepath.Join(dir, ConnectorManifest))
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, ConnectorManifest), err)
	}
	if len(c.Jars) == 0 {
		return nil, fmt.Errorf("%s names no jar", filepath.Join(dir, ConnectorManifest))
	}
	for _, j := range c.Jars {
		sum, _, err := copyHashed(filepath.Join(dir, j.Name), "")
		if err != nil {
			return nil, err
		}
		if sum != j.SHA256 {
			return nil, &ChecksumError{URL: filepath.Join(dir, j.Name), Want: j.SHA256, Got: sum}
		}
	}
	c.Dir = dir
	return &c, nil
}

// copyHashed copies src to dst (when dst is not empty) and returns src's SHA-256 and size.
func copyHashed(src, dst string) (string, int64, error) {
	in, err := os.Open(src)
	if err != nil {
		return "", 0, err
	}
	defer in.Close()
	h := sha256.New()
	w := io.Writer(h)
	var out *os.File
	if dst != "" {
		if out, err = os.Create(dst); err != nil {
			return "", 0, err
		}
		defer out.Close()
		w = io.MultiWriter(h, out)
	}
	n, err := io.Copy(w, in)
	if err == nil && out != nil {
		err = out.Close()
	}
	return hex.EncodeToString(h.Sum(nil)), n, err
}

// maven runs mvn on a generated POM in its own directory.
type maven struct{ bin, dir string }

// writePOM writes a POM that depends on hadoop-aws; with an SDK group and version, on the
// SDK's modules that S3A needs in place of the bundle.
func (m maven) writePOM(hadoop, group, sdk string) error {
	var deps strings.Builder
	excl := ""
	if group != "" {
		s := sdkModules[group]
		excl = fmt.Sprintf("<exclusions><exclusion><groupId>%s</groupId><artifactId>%s</artifactId></exclusion></exclusions>", group, s.bundle)
		for _, mod := range s.modules {
			fmt.Fprintf(&deps, "    <dependency><groupId>%s</groupId><artifactId>%s</artifactId><version>%s</version></dependency>\n", group, mod, sdk)
		}
	}
	pom := fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>
<!-- Written by sparkplane to resolve Hadoop's S3A connector. -->
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.sparkplane</groupId>
  <artifactId>s3a-connector</artifactId>
  <version>%[1]s</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.hadoop</groupId><artifactId>hadoop-aws</artifactId><version>%[1]s</version>%[2]s</dependency>
%[3]s  </dependencies>
</project>
`, hadoop, excl, deps.String())
	return os.WriteFile(filepath.Join(m.dir, "pom.xml"), []byte(pom), 0o644)
}

// run runs one goal in batch mode with strict checksums; a failure carries Maven's errors.
func (m maven) run(ctx context.Context, goal string, args ...string) error {
	cmd := exec.CommandContext(ctx, m.bin, append([]string{"-B", "-q", "-Dstyle.color=never", "--strict-checksums", "-f", filepath.Join(m.dir, "pom.xml"), goal}, args...)...)
	cmd.Dir = m.dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("mvn %s: %v\n%s", goal, err, mavenErrors(string(out)))
	}
	return nil
}

// mavenErrors keeps Maven's [ERROR] lines (the first few), which say what failed.
func mavenErrors(out string) string {
	var keep []string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "[ERROR]") && strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(l), "[ERROR]")) != "" {
			keep = append(keep, "  "+strings.TrimSpace(l))
		}
		if len(keep) == 6 {
			break
		}
	}
	if len(keep) == 0 {
		return "  " + strings.TrimSpace(out)
	}
	return strings.Join(keep, "\n")
}

// bundleOf finds the AWS SDK bundle in the dependency tree Maven wrote.
func bundleOf(tree string) (group, version string, err error) {
	b, err := os.ReadFile(tree)
	if err != nil {
		return "", "", err
	}
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimLeft(l, `|+\- `)
		f := strings.Split(l, ":")
		if len(f) < 4 {
			continue
		}
		if s, ok := sdkModules[f[0]]; ok && f[1] == s.bundle {
			return f[0], f[3], nil
		}
	}
	return "", "", fmt.Errorf("it depends on no AWS SDK bundle (%s:%s or %s:%s)", sdkV1Group, sdkModules[sdkV1Group].bundle, sdkV2Group, sdkModules[sdkV2Group].bundle)
}

type mavenArtifact struct{ group, artifact, version, path string }

// readDependencyList reads dependency:list's output file: "group:artifact:type:version:scope:path",
// each line perhaps followed by " -- module name".
func readDependencyList(path string) ([]mavenArtifact, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []mavenArtifact
	s := bufio.NewScanner(f)
	for s.Scan() {
		l, _, _ := strings.Cut(strings.TrimSpace(s.Text()), " -- ")
		f := strings.SplitN(l, ":", 6)
		if len(f) < 6 || f[2] != "jar" {
			continue
		}
		out = append(out, mavenArtifact{group: f[0], artifact: f[1], version: f[3], path: f[5]})
	}
	if err := s.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, errors.New("maven resolved no jar for hadoop-aws")
	}
	return out, nil
}

// distArtifacts is the Maven group:artifact of each jar in a distribution's jars directory, as
// the jar's own META-INF/maven/<group>/<artifact>/pom.properties says (so that a jar of the same
// name from another group, say the SDK's "annotations", is not taken for Spark's).
func distArtifacts(jars string) (map[string]bool, error) {
	entries, err := os.ReadDir(jars)
	if err != nil {
		return nil, err
	}
	has := map[string]bool{}
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".jar") {
			continue
		}
		artifact := jarArtifact(name)
		z, err := zip.OpenReader(filepath.Join(jars, name))
		if err != nil {
			continue // not a zip: not a jar Maven would put beside ours
		}
		for _, f := range z.File {
			rest, ok := strings.CutPrefix(f.Name, "META-INF/maven/")
			if !ok || !strings.HasSuffix(rest, "/pom.properties") {
				continue
			}
			parts := strings.Split(rest, "/")
			if len(parts) == 3 && parts[1] == artifact {
				has[parts[0]+":"+parts[1]] = true
			}
		}
		z.Close()
	}
	return has, nil
}

// jarArtifact is the artifact id in a Maven jar's file name: what comes before "-<digit>".
func jarArtifact(name string) string {
	name = strings.TrimSuffix(name, ".jar")
	for i := 0; i+1 < len(name); i++ {
		if name[i] == '-' && name[i+1] >= '0' && name[i+1] <= '9' {
			return name[:i]
		}
	}
	return name
}
