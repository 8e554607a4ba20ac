package autoscale

import (
	"fmt"
	"strconv"
	"strings"
)

// SpotDiscount is the fraction of the on-demand price a spot hour typically costs for these
// general-purpose types (spot prices move hourly; 38% is a typical level for m5/m6i in us-east-1).
const SpotDiscount = 0.38

// catalog holds common EC2 worker types: vCPUs and the us-east-1 Linux on-demand price per hour
// from the AWS price list. Spot prices are on-demand × SpotDiscount.
var catalog = buildCatalog()

func buildCatalog() map[string]InstanceType {
	out := map[string]InstanceType{}
	for _, t := range []struct {
		name  string
		cores int
		od    float64
	}{
		{"m5.large", 2, 0.096}, {"m5.xlarge", 4, 0.192}, {"m5.2xlarge", 8, 0.384}, {"m5.4xlarge", 16, 0.768},
		{"m5a.large", 2, 0.086}, {"m5a.xlarge", 4, 0.172}, {"m5a.2xlarge", 8, 0.344}, {"m5a.4xlarge", 16, 0.688},
		{"m6i.large", 2, 0.096}, {"m6i.xlarge", 4, 0.192}, {"m6i.2xlarge", 8, 0.384}, {"m6i.4xlarge", 16, 0.768},
		{"m6a.large", 2, 0.0864}, {"m6a.xlarge", 4, 0.1728}, {"m6a.2xlarge", 8, 0.3456},
		{"m7i.large", 2, 0.1008}, {"m7i.xlarge", 4, 0.2016}, {"m7i.2xlarge", 8, 0.4032},
		{"c5.xlarge", 4, 0.17}, {"c5.2xlarge", 8, 0.34}, {"c6i.xlarge", 4, 0.17}, {"c6i.2xlarge", 8, 0.34},
		{"r5.xlarge", 4, 0.252}, {"r5.2xlarge", 8, 0.504}, {"r6i.xlarge", 4, 0.252}, {"r6i.2xlarge", 8, 0.504},
	} {
		out[t.name] = InstanceType{Name: t.name, Cores: t.cores, OnDemand: t.od, Spot: roundCents(t.od * SpotDiscount)}
	}
	return out
}

func roundCents(v float64) float64 { return float64(int(v*10000+0.5)) / 10000 }

// LookupType returns what the catalogue knows of an instance type.
func LookupType(name string) (InstanceType, bool) {
	t, ok := catalog[name]
	return t, ok
}

// ParseType reads "name:cores:ondemand[:spot]" (prices per hour), for types the catalogue does
// not hold or prices of your own.
func ParseType(s string) (InstanceType, error) {
	f := strings.Split(s, ":")
	if len(f) < 3 || len(f) > 4 {
		return InstanceType{}, fmt.Errorf("%q: want name:cores:on-demand-price[:spot-price], e.g. m5.xlarge:4:0.192:0.07", s)
	}
	t := InstanceType{Name: f[0]}
	var err error
	if t.Cores, err = strconv.Atoi(f[1]); err != nil || t.Cores < 1 {
		return t, fmt.Errorf("%q: cores must be a whole number of at least 1", s)
	}
	if t.OnDemand, err = strconv.ParseFloat(f[2], 64); err != nil || t.OnDemand < 0 {
		return t, fmt.Errorf("%q: the on-demand price must be a number of dollars per hour", s)
	}
	t.Spot = roundCents(t.OnDemand * SpotDiscount)
	if len(f) == 4 {
		if t.Spot, err = strconv.ParseFloat(f[3], 64); err != nil || t.Spot < 0 {
			return t, fmt.Errorf("%q: the spot price must be a number of dollars per hour", s)
		}
	}
	return t, nil
}
