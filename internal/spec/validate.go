package spec

import (
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

var (
	nameRe    = regexp.MustCompile(`^[a-z]([a-z0-9-]{0,38}[a-z0-9])?$`)
	versionRe = regexp.MustCompile(`^(\d+)\.(\d+)\.(\d+)(-[0-9A-Za-z.-]+)?$`)
	bucketRe  = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)
	regionRe  = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-\d$`)
	dnsRe     = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	// jumpHost is ssh -J's [user@]host[:port], the host a name, an IPv4 address or [IPv6].
	jumpHost = regexp.MustCompile(`^([A-Za-z0-9._-]+@)?([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:\d{1,5})?$`)
)

// reservedConf are Spark properties sparkplane sets itself; a spec that sets them would break the
// cluster or its security.
var reservedConf = map[string]string{
	"spark.master":               "sparkplane points every node and job at the cluster's master",
	"spark.authenticate":         "use spark.authenticate in the spec instead",
	"spark.authenticate.secret":  "sparkplane generates the cluster secret and keeps it out of files and command lines",
	"spark.master.rest.enabled":  "use spark.submit: rest in the spec instead",
	"spark.decommission.enabled": "sparkplane turns it on so that workers are drained before they are removed",
}

// Validate checks a converted spec and returns an ErrorList, or nil. Specs built in code (no
// Origin) are checked too; their errors then name only the field.
func Validate(c *Cluster) error {
	o := c.Origin
	var errs ErrorList
	add := func(path, hint, format string, args ...any) {
		errs = append(errs, o.Errorf(path, hint, format, args...))
	}

	switch {
	case c.Name == "":
		add("name", "add name: my-cluster to the spec, or pass -n my-cluster", "required")
	case !nameRe.MatchString(c.Name):
		add("name", "use lower-case letters, digits and '-', starting with a letter, at most 40", "%q is not a valid cluster name", c.Name)
	}
	if !slices.Contains(Providers, c.Provider) {
		add("provider", suggestOne(c.Provider, Providers), "unknown provider %q", c.Provider)
	}

	validateSpark(c, add)
	validateWorkers(c, add)

	switch c.Autoscale.Policy {
	case PolicyOff, PolicySpark, PolicyCPU:
	default:
		add("autoscale.policy", suggestOne(c.Autoscale.Policy, []string{PolicyOff, PolicySpark, PolicyCPU}), "unknown policy %q", c.Autoscale.Policy)
	}
	if c.Autoscale.Headroom < 0 {
		add("autoscale.headroom", "", "must not be negative")
	}
	if c.Autoscale.Interval < time.Second {
		add("autoscale.interval", "use at least 1s", "%s is too short", c.Autoscale.Interval)
	}
	if c.Autoscale.KeepAlive < 0 {
		add("autoscale.keepAlive", "leave it out to derive it from the launch latency", "must not be negative")
	}
	if c.Lifetime.IdleTimeout < 0 || (c.Lifetime.IdleTimeout > 0 && c.Lifetime.IdleTimeout < time.Second) {
		add("lifetime.idleTimeout", "use at least 1s; leave it out for no limit", "%s is too short", c.Lifetime.IdleTimeout)
	}
	if c.Lifetime.MaxAge < 0 || (c.Lifetime.MaxAge > 0 && c.Lifetime.MaxAge < time.Second) {
		add("lifetime.maxAge", "use at least 1s; leave it out for no limit", "%s is too short", c.Lifetime.MaxAge)
	}
	if b := c.Storage.Bucket; b != "" && (!bucketRe.MatchString(b) || strings.Contains(b, "..")) {
		add("storage.bucket", "S3 bucket names are 3-63 lower-case letters, digits, '.' and '-'", "%q is not a valid bucket name", b)
	}
	if strings.HasPrefix(c.Storage.Prefix, "/") {
		add("storage.prefix", "drop the leading '/'", "%q starts with '/'", c.Storage.Prefix)
	}
	if e := c.Storage.Endpoint; e != "" {
		if u, err := url.Parse(e); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			add("storage.endpoint", "write the store's URL with its scheme and no path, e.g. http://127.0.0.1:9000", "%q is not an http:// or https:// URL of a host", e)
		}
	}
	validateProviderBlocks(c, add)
	return errs.err()
}

type addFunc func(path, hint, format string, args ...any)

func validateSpark(c *Cluster, add addFunc) {
	s := c.Spark
	if m := versionRe.FindStringSubmatch(s.Version); m == nil {
		add("spark.version", "write a full release such as "+DefaultSparkVersion, "%q is not a Spark release number", s.Version)
	} else {
		major, _ := strconv.Atoi(m[1])
		minor, _ := strconv.Atoi(m[2])
		if major < 3 || (major == 3 && minor < 2) {
			add("spark.version", "sparkplane needs Spark 3.2 or later (graceful decommissioning)", "Spark %s is too old", s.Version)
		}
	}
	if s.Mirror != "" {
		if u, err := url.Parse(s.Mirror); err != nil || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "file") || (u.Scheme != "file" && u.Host == "") {
			add("spark.mirror", "use an http(s):// or file:// URL, e.g. https://archive.apache.org/dist", "%q is not a URL", s.Mirror)
		}
	}
	keys := make([]string, 0, len(s.Conf))
	for k := range s.Conf {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		path := "spark.conf[" + strconv.Quote(k) + "]"
		if why, ok := reservedConf[k]; ok {
			add(path, why, "%s is set by sparkplane", k)
		} else if !strings.HasPrefix(k, "spark.") {
			add(path, "Spark properties start with \"spark.\"", "%q is not a Spark property", k)
		} else if strings.ContainsAny(k, " \t\n=:") {
			add(path, "", "%q contains a space, '=' or ':'", k)
		}
		if strings.ContainsAny(s.Conf[k], "\n\r") {
			add(path, "", "the value spans several lines; Spark properties are one line")
		}
	}
	switch s.Submit {
	case SubmitSparkSubmit:
	case SubmitREST:
		if s.Authenticate {
			add("spark.submit", "set spark.authenticate: false to use it, or leave submit as spark-submit",
				"Spark's REST submission server has no authentication and will not start beside spark.authenticate")
		}
	default:
		add("spark.submit", suggestOne(s.Submit, []string{SubmitSparkSubmit, SubmitREST}), "unknown submission path %q", s.Submit)
	}
	if s.Home != "" && c.Provider != "local" && c.Provider != "nomad" && c.Provider != "hosts" {
		add("spark.home", "only the local provider (a Spark on this machine), nomad and hosts (a Spark on every node) use it; leave it out", "not used by provider %s", c.Provider)
	}
}

func validateWorkers(c *Cluster, add addFunc) {
	w := c.Workers
	if w.Min < 0 {
		add("workers.min", "", "must not be negative")
	}
	if w.Max < 1 {
		add("workers.max", "", "must be at least 1")
	}
	if w.Count < 0 {
		add("workers.count", "", "must not be negative")
	}
	if w.Min > w.Max && w.Max >= 1 {
		add("workers.min", fmt.Sprintf("lower min or raise max to at least %d", w.Min), "min %d is above max %d", w.Min, w.Max)
	}
	if w.Count > w.Max && w.Max >= 1 {
		add("workers.count", fmt.Sprintf("raise workers.max to at least %d, or lower count", w.Count), "count %d is above max %d", w.Count, w.Max)
	}
	if w.Count < w.Min && w.Count >= 0 && w.Min <= w.Max {
		add("workers.count", fmt.Sprintf("raise count to at least %d, or lower min", w.Min), "count %d is below min %d", w.Count, w.Min)
	}
	if w.Cores < 1 || w.Cores > 4096 {
		add("workers.cores", "", "%d is out of range 1-4096", w.Cores)
	}
	if w.MemoryMiB > 0 && w.MemoryMiB < 256 {
		add("workers.memory", "give each worker at least 256m", "%s is too little for a Spark worker", FormatMemory(w.MemoryMiB))
	}
	for i, t := range w.InstanceTypes {
		if strings.TrimSpace(t) == "" {
			add(fmt.Sprintf("workers.instanceTypes[%d]", i), "", "empty instance type")
		}
	}
	if w.DiskGiB != 0 && (w.DiskGiB < 8 || w.DiskGiB > 16384) {
		add("workers.diskGiB", "", "%d is out of range 8-16384", w.DiskGiB)
	}
	if c.Master.DiskGiB != 0 && (c.Master.DiskGiB < 8 || c.Master.DiskGiB > 16384) {
		add("master.diskGiB", "", "%d is out of range 8-16384", c.Master.DiskGiB)
	}
}

func validateProviderBlocks(c *Cluster, add addFunc) {
	blocks := map[string]bool{"aws": c.AWS != nil, "kubernetes": c.Kubernetes != nil, "nomad": c.Nomad != nil, "hosts": c.Hosts != nil}
	for _, name := range []string{"aws", "kubernetes", "nomad", "hosts"} {
		if blocks[name] && c.Provider != name {
			add(name, "remove it, or set provider: "+name, "settings for provider %s, but the provider is %s", name, c.Provider)
		}
	}
	if a := c.AWS; a != nil {
		if a.Region != "" && !regionRe.MatchString(a.Region) {
			add("aws.region", "e.g. eu-west-1", "%q is not an AWS region", a.Region)
		}
		if a.Zones < 1 || a.Zones > 6 {
			add("aws.zones", "", "%d is out of range 1-6", a.Zones)
		}
		for i, cidr := range a.AllowedCIDRs {
			if _, _, err := net.ParseCIDR(cidr); err != nil {
				add(fmt.Sprintf("aws.allowedCIDRs[%d]", i), "write a network such as 203.0.113.0/24, or 198.51.100.7/32 for one address", "%q is not a CIDR", cidr)
			}
		}
		if len(a.SubnetIDs) > 0 && a.VPCID == "" {
			add("aws.subnetIds", "set aws.vpcId to the VPC these subnets are in", "subnets given without a VPC")
		}
		if a.Endpoint != "" {
			if u, err := url.Parse(a.Endpoint); err != nil || u.Host == "" {
				add("aws.endpoint", "e.g. http://127.0.0.1:5000", "%q is not a URL", a.Endpoint)
			}
		}
		switch st := a.State; st.Backend {
		case StateLocal:
			if st.Bucket != "" {
				add("aws.state.bucket", "add backend: s3 to keep the state in this bucket", "a bucket for a local state")
			}
		case StateS3:
			if st.Bucket == "" {
				add("aws.state.bucket", "name an existing, versioned bucket, e.g. bucket: my-team-terraform-state", "backend s3 needs a bucket")
			}
			if st.Region != "" && !regionRe.MatchString(st.Region) {
				add("aws.state.region", "e.g. eu-west-1", "%q is not an AWS region", st.Region)
			}
		default:
			add("aws.state.backend", "use local or s3", "%q is not a state backend", st.Backend)
		}
	}
	if k := c.Kubernetes; k != nil && !dnsRe.MatchString(k.Namespace) {
		add("kubernetes.namespace", "use lower-case letters, digits and '-'", "%q is not a valid namespace", k.Namespace)
	}
	if n := c.Nomad; n != nil && n.Address != "" {
		if u, err := url.Parse(n.Address); err != nil || u.Host == "" {
			add("nomad.address", "e.g. http://127.0.0.1:4646", "%q is not a URL", n.Address)
		}
	}
	if n := c.Nomad; n != nil {
		switch n.Driver {
		case DriverRawExec, DriverExec:
			if n.Image != "" {
				add("nomad.image", "leave it out, or use driver: docker", "only the docker driver runs an image")
			}
		case DriverDocker:
			if n.Image == "" {
				add("nomad.image", "name an image with Java (and sparkplane and Spark, unless nomad.artifacts brings them)", "required by driver docker")
			}
		default:
			add("nomad.driver", "use exec, docker, or raw_exec where the clients enable it", "%q is not a task driver sparkplane runs its agents under", n.Driver)
		}
		if !filepath.IsAbs(n.Sparkplane) {
			add("nomad.sparkplane", "e.g. /usr/local/bin/sparkplane", "%q is not an absolute path", n.Sparkplane)
		}
		for i, a := range []*Artifact{n.Artifacts.Sparkplane, n.Artifacts.Spark} {
			if a == nil {
				continue
			}
			path := "nomad.artifacts." + []string{"sparkplane", "spark"}[i]
			if u, err := url.Parse(a.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				add(path+".url", "an http(s):// URL the client nodes reach", "%q is not an http(s) URL", a.URL)
			}
			if !sha256Re.MatchString(a.SHA256) {
				add(path+".sha256", "give the file's SHA-256 in hex, as sha256sum prints it: the client nodes run only what matches", "%q is not a SHA-256", a.SHA256)
			}
		}
		if n.Artifacts.Spark != nil && c.Spark.Home != "" {
			add("spark.home", "leave it out, or drop nomad.artifacts.spark", "the client nodes download Spark (nomad.artifacts.spark); they cannot also use spark.home")
		}
		for i, k := range n.Constraints {
			validateNomadConstraint(fmt.Sprintf("nomad.constraints[%d]", i), k, add)
		}
		if k := n.Spot; k != nil {
			validateNomadConstraint("nomad.spot", *k, add)
		}
	}
	if c.Provider == "nomad" && c.Workers.Spot && (c.Nomad == nil || c.Nomad.Spot == nil) {
		add("workers.spot", "say what marks a spot client node, e.g. nomad: {spot: {attribute: '${node.class}', value: spot}}, or leave spot out", "Nomad has no spot capacity of its own")
	}
	if c.Provider == "hosts" && (c.Hosts == nil || c.Hosts.Master == "") {
		add("hosts.master", "name the machine that runs the master", "required for provider hosts")
	}
	if h := c.Hosts; h != nil && (h.Port < 1 || h.Port > 65535) {
		add("hosts.port", "", "%d is not a port", h.Port)
	}
	if h := c.Hosts; h != nil && c.Provider == "hosts" {
		if c.Workers.Count > len(h.Workers) {
			add("workers.count", fmt.Sprintf("list more hosts in hosts.workers, or ask for at most %d", len(h.Workers)), "%d workers, but hosts.workers lists %d hosts", c.Workers.Count, len(h.Workers))
		}
		seen := map[string]bool{h.Master: true}
		for i, w := range h.Workers {
			if seen[w] {
				add(fmt.Sprintf("hosts.workers[%d]", i), "give each host once; the master runs no worker", "%s is listed twice", w)
			}
			seen[w] = true
		}
		if h.Jump != "" && !jumpHost.MatchString(h.Jump) {
			add("hosts.jump", "write it as ssh -J takes it: [user@]host[:port], e.g. admin@bastion.example.com:2222", "%q is not a host", h.Jump)
		}
		if h.Dir != "" && !filepath.IsAbs(h.Dir) {
			add("hosts.dir", "give an absolute path on the hosts", "%q is not an absolute path", h.Dir)
		}
		if c.Lifetime != (Lifetime{}) {
			add("lifetime", "leave it out: a master's agent cannot reach the other hosts over SSH to end the cluster (no private key is copied to a host)", "not supported by provider hosts")
		}
		if c.Autoscale.Policy != PolicyOff {
			add("autoscale.policy", "leave it off, and add or remove hosts with sparkplane add/remove", "not supported by provider hosts")
		}
	}
}

// suggestOne offers the closest of choices to s, or lists them.
func suggestOne(s string, choices []string) string {
	best, bestDist := "", 3
	for _, c := range choices {
		if d := editDistance(strings.ToLower(s), c); d < bestDist {
			best, bestDist = c, d
		}
	}
	if best != "" {
		return fmt.Sprintf("did you mean %q?", best)
	}
	return "one of: " + strings.Join(choices, ", ")
}

var sha256Re = regexp.MustCompile(`^[0-9a-f]{64}$`)

// nomadOperators are the constraint operators Nomad knows.
var nomadOperators = []string{"=", "!=", ">", ">=", "<", "<=", "regexp", "version", "semver", "set_contains", "set_contains_all", "set_contains_any", "is_set", "is_not_set", "distinct_hosts", "distinct_property"}

func validateNomadConstraint(path string, k NomadConstraint, add addFunc) {
	if k.Operator != "" && !slices.Contains(nomadOperators, k.Operator) {
		add(path+".operator", suggestOne(k.Operator, nomadOperators), "%q is not a Nomad constraint operator", k.Operator)
	}
	if k.Attribute == "" && k.Operator != "distinct_hosts" {
		add(path+".attribute", "name a node attribute, e.g. ${meta.rack}, ${node.class} or ${attr.kernel.name}", "required")
	}
	if k.Value == "" && k.Operator != "is_set" && k.Operator != "is_not_set" && k.Operator != "distinct_hosts" {
		add(path+".value", "", "required with operator %s", or(k.Operator, "="))
	}
}
