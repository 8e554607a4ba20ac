package sim

import (
	"github.com/sparkplane/sparkplane/internal/autoscale"
)

// Policies the comparison runs, by name. "static" is the initial size kept all day.
var Policies = []string{autoscale.PolicySpark, autoscale.PolicyCPU, "static"}

// Compare runs each policy over the same jobs. cfg gives the bounds, types and market; static is
// sized to the day's 95th-percentile demand (within cfg.Max unless staticSize says otherwise).
// progress, when not nil, hears each policy's finished jobs at each hundredth of them.
func Compare(jobs []Job, cfg autoscale.Config, m Model, policies []string, staticSize int, progress func(policy string, finished, total int)) []*Result {
	cfg = cfg.Defaults()
	if staticSize <= 0 {
		staticSize = StaticSize(jobs, m, cfg.Types[0].Cores)
	}
	var out []*Result
	for _, p := range policies {
		c := cfg
		setup := Setup{Config: c, Initial: c.Min}
		if progress != nil {
			setup.OnProgress = func(finished, total int) { progress(p, finished, total) }
		}
		switch p {
		case "static":
			setup.Config.Policy, setup.Initial = autoscale.PolicyOff, staticSize
		case autoscale.PolicyCPU:
			setup.Config.Policy, setup.Initial = p, max(1, c.Min)
		default:
			setup.Config.Policy = p
		}
		out = append(out, Run(jobs, setup, m))
	}
	return out
}
