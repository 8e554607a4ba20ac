package sim

import (
	"fmt"
	"io"
	"math"
	"strings"
	"time"
)

// WriteSVG draws, for each result, the workers running over time (line, left axis) and the
// tasks waiting for a core (shaded, right axis, logarithmic), one panel per policy, stacked.
func WriteSVG(w io.Writer, title string, results []*Result) error {
	const (
		width   = 960
		panelH  = 170
		left    = 60
		right   = 70
		top     = 40
		gap     = 30
		bottomH = 40
	)
	height := top + len(results)*(panelH+gap) + bottomH
	plotW := float64(width - left - right)
	var span time.Duration
	maxWorkers, maxQueued := 1, 1
	for _, r := range results {
		for _, p := range r.Series {
			span = max(span, p.T)
			maxWorkers = max(maxWorkers, p.Workers+p.Pending)
			maxQueued = max(maxQueued, p.Queued)
		}
	}
	if span == 0 {
		span = time.Hour
	}
	logMax := math.Log10(float64(maxQueued) + 1)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%d" y="22" font-size="15" font-weight="bold">%s</text>`+"\n", left, escape(title))
	for i, r := range results {
		y0 := float64(top + i*(panelH+gap))
		x := func(t time.Duration) float64 { return float64(left) + plotW*float64(t)/float64(span) }
		yw := func(n int) float64 { return y0 + panelH - panelH*float64(n)/float64(maxWorkers) }
		yq := func(n int) float64 { return y0 + panelH - panelH*math.Log10(float64(n)+1)/logMax }
		fmt.Fprintf(&b, `<rect x="%d" y="%.0f" width="%.0f" height="%d" fill="none" stroke="#ccc"/>`+"\n", left, y0, plotW, panelH)
		// Queued tasks.
		var area strings.Builder
		fmt.Fprintf(&area, "M%.1f,%.1f", x(0), y0+panelH)
		for _, p := range r.Series {
			fmt.Fprintf(&area, " L%.1f,%.1f", x(p.T), yq(p.Queued))
		}
		fmt.Fprintf(&area, " L%.1f,%.1f Z", x(r.Series[len(r.Series)-1].T), y0+panelH)
		fmt.Fprintf(&b, `<path d="%s" fill="#f4a582" fill-opacity="0.6" stroke="none"/>`+"\n", area.String())
		// Workers, and workers plus those starting.
		for _, line := range []struct {
			color string
			n     func(Point) int
		}{{"#92c5de", func(p Point) int { return p.Workers + p.Pending }}, {"#2166ac", func(p Point) int { return p.Workers }}} {
			var pl strings.Builder
			for k, p := range r.Series {
				if k > 0 {
					pl.WriteString(" ")
				}
				fmt.Fprintf(&pl, "%.1f,%.1f", x(p.T), yw(line.n(p)))
			}
			fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="1.5"/>`+"\n", pl.String(), line.color)
		}
		fmt.Fprintf(&b, `<text x="%d" y="%.0f" font-weight="bold">%s — $%.2f, p95 bounded slowdown %.1f</text>`+"\n", left+6, y0+16, escape(r.Policy), r.CostUSD, r.BoundedSlow.P95)
		fmt.Fprintf(&b, `<text x="%d" y="%.0f" text-anchor="end">%d</text><text x="%d" y="%.0f" text-anchor="end">0</text>`+"\n", left-6, y0+12, maxWorkers, left-6, y0+panelH)
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f">%d</text><text x="%.0f" y="%.0f">0</text>`+"\n", float64(left)+plotW+6, y0+12, maxQueued, float64(left)+plotW+6, y0+panelH)
	}
	yb := float64(top + len(results)*(panelH+gap) - gap + 16)
	for h := 0; h <= int(span.Hours()); h += 3 {
		xx := float64(left) + plotW*float64(time.Duration(h)*time.Hour)/float64(span)
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" text-anchor="middle">%dh</text>`+"\n", xx, yb, h)
	}
	fmt.Fprintf(&b, `<text x="%d" y="%.0f"><tspan fill="#2166ac">■ workers running</tspan>  <tspan fill="#92c5de">■ with workers starting</tspan> (left axis)   <tspan fill="#f4a582">■ tasks waiting for a core</tspan> (right axis, logarithmic)</text>`+"\n", left, yb+20)
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func escape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}
