package spec

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Defaults for fields left out.
const (
	defaultWorkers      = 2
	defaultMaxAtLeast   = 10
	defaultWorkerCores  = 2
	defaultWorkerMemory = 2048 // MiB: a driver and an executor of Spark's default 1g each fit on one worker
	defaultNamespace    = "sparkplane"
	defaultSSHPort      = 22
	defaultZones        = 1
)

// convert turns the versioned spec into the internal one, applying defaults to what was left out.
func (v *clusterV1) convert(o *Origin, fallbackName string) (*Cluster, ErrorList) {
	var errs ErrorList
	c := &Cluster{
		Name:     v.Name,
		Provider: v.Provider,
		Origin:   o,
	}
	if c.Name == "" {
		c.Name = fallbackName
	}
	if c.Provider == "" {
		c.Provider = "local"
	}

	c.Spark = Spark{
		Version:      or(v.Spark.Version, DefaultSparkVersion),
		Home:         v.Spark.Home,
		Mirror:       v.Spark.Mirror,
		Conf:         v.Spark.Conf,
		Authenticate: boolOr(v.Spark.Authenticate, true),
		Submit:       or(v.Spark.Submit, SubmitSparkSubmit),
	}
	c.Master = Master{InstanceType: v.Master.InstanceType, DiskGiB: intOr(v.Master.DiskGiB, 0)}

	w := v.Workers
	c.Workers = Workers{
		Count:         intOr(w.Count, defaultWorkers),
		Min:           intOr(w.Min, 0),
		Cores:         intOr(w.Cores, defaultWorkerCores),
		MemoryMiB:     defaultWorkerMemory,
		InstanceTypes: w.InstanceTypes,
		Spot:          boolOr(w.Spot, false),
		DiskGiB:       intOr(w.DiskGiB, 0),
	}
	c.Workers.Max = intOr(w.Max, max(c.Workers.Count, defaultMaxAtLeast))
	if w.Memory != "" {
		mib, err := ParseMemoryMiB(w.Memory)
		if err != nil {
			errs = append(errs, o.Errorf("workers.memory", "write it as Spark does: 512m, 2g", "%v", err))
		}
		c.Workers.MemoryMiB = mib
	}

	c.Autoscale.Policy = or(v.Autoscale.Policy, PolicyOff)
	c.Autoscale.Headroom = intOr(v.Autoscale.Headroom, 0)
	c.Autoscale.Interval = 10 * time.Second
	if v.Autoscale.Interval != nil {
		c.Autoscale.Interval = v.Autoscale.Interval.Duration
	}
	if v.Autoscale.KeepAlive != nil {
		c.Autoscale.KeepAlive = v.Autoscale.KeepAlive.Duration
	}
	if c.Autoscale.Policy == "static" {
		c.Autoscale.Policy = PolicyOff
	}
	if v.Lifetime.IdleTimeout != nil {
		c.Lifetime.IdleTimeout = v.Lifetime.IdleTimeout.Duration
	}
	if v.Lifetime.MaxAge != nil {
		c.Lifetime.MaxAge = v.Lifetime.MaxAge.Duration
	}
	c.Storage = Storage{Bucket: v.Storage.Bucket, Prefix: v.Storage.Prefix, Path: v.Storage.Path, Endpoint: v.Storage.Endpoint,
		PathStyle: boolOr(v.Storage.PathStyle, v.Storage.Endpoint != "")}
	c.Monitoring = Monitoring{Prometheus: boolOr(v.Monitoring.Prometheus, false), Grafana: boolOr(v.Monitoring.Grafana, false)}

	if a := v.AWS; a != nil {
		c.AWS = &AWS{Region: a.Region, Zones: intOr(a.Zones, defaultZones), AllowedCIDRs: a.AllowedCIDRs, VPCID: a.VPCID,
			SubnetIDs: a.SubnetIDs, KeyName: a.KeyName, Gateway: boolOr(a.Gateway, false), Endpoint: a.Endpoint,
			State: State{Backend: StateLocal}}
		if st := a.State; st != nil {
			c.AWS.State = State{Backend: or(st.Backend, StateLocal), Bucket: st.Bucket, Key: st.Key, Region: st.Region}
		}
	}
	if k := v.Kubernetes; k != nil {
		c.Kubernetes = &Kubernetes{Kubeconfig: k.Kubeconfig, Context: k.Context, Namespace: or(k.Namespace, defaultNamespace)}
	}
	if n := v.Nomad; n != nil {
		c.Nomad = &Nomad{Address: n.Address, Region: n.Region, Namespace: n.Namespace, Datacenters: n.Datacenters,
			Driver: or(n.Driver, DriverExec), Image: n.Image, Sparkplane: or(n.Sparkplane, "/usr/local/bin/sparkplane"), NodePool: n.NodePool}
		for _, k := range n.Constraints {
			c.Nomad.Constraints = append(c.Nomad.Constraints, NomadConstraint(k))
		}
		if a := n.Artifacts; a != nil {
			if a.Sparkplane != nil {
				c.Nomad.Artifacts.Sparkplane = &Artifact{URL: a.Sparkplane.URL, SHA256: strings.ToLower(a.Sparkplane.SHA256)}
			}
			if a.Spark != nil {
				c.Nomad.Artifacts.Spark = &Artifact{URL: a.Spark.URL, SHA256: strings.ToLower(a.Spark.SHA256)}
			}
		}
		if n.Spot != nil {
			c.Nomad.Spot = &NomadConstraint{Attribute: n.Spot.Attribute, Value: n.Spot.Value}
		}
	}
	if h := v.Hosts; h != nil {
		c.Hosts = &Hosts{Master: h.Master, Workers: h.Workers, User: h.User, Port: intOr(h.Port, defaultSSHPort), IdentityFile: h.IdentityFile,
			KnownHosts: h.KnownHosts, Dir: h.Dir, Jump: h.Jump}
	}
	return c, errs
}

var memRe = regexp.MustCompile(`^(?i)(\d+)\s*([kmgt])(i?b)?$`)

// ParseMemoryMiB reads a memory size as Spark writes it ("512m", "2g", "1536M") into MiB. A bare
// number is refused: Spark reads it as bytes, which is never what was meant.
func ParseMemoryMiB(s string) (int, error) {
	s = strings.TrimSpace(s)
	m := memRe.FindStringSubmatch(s)
	if m == nil {
		if _, err := strconv.Atoi(s); err == nil {
			return 0, fmt.Errorf("%q has no unit (Spark would read bytes); add one, e.g. %sm", s, s)
		}
		return 0, fmt.Errorf("%q is not a memory size", s)
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is too large", s)
	}
	var mib int64
	switch strings.ToLower(m[2]) {
	case "k":
		mib = n / 1024
	case "m":
		mib = n
	case "g":
		mib = n * 1024
	case "t":
		mib = n * 1024 * 1024
	}
	if mib <= 0 || mib > 1<<30 {
		return 0, fmt.Errorf("%q is out of range", s)
	}
	return int(mib), nil
}

// FormatMemory writes MiB the way Spark reads it ("2g", "1536m").
func FormatMemory(mib int) string {
	if mib%1024 == 0 {
		return strconv.Itoa(mib/1024) + "g"
	}
	return strconv.Itoa(mib) + "m"
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func intOr(p *int, def int) int {
	if p == nil {
		return def
	}
	return *p
}

func boolOr(p *bool, def bool) bool {
	if p == nil {
		return def
	}
	return *p
}
