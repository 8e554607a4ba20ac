package monitoring

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

// query is one PromQL expression of a dashboard.
type query struct {
	where string // dashboard / panel
	expr  string // as written, with Grafana's variables
}

type panel struct {
	ID         int    `json:"id"`
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource struct {
		UID string `json:"uid"`
	} `json:"datasource"`
	GridPos struct{ H, W, X, Y int } `json:"gridPos"`
	Targets []struct {
		RefID      string `json:"refId"`
		Expr       string `json:"expr"`
		Datasource struct {
			UID string `json:"uid"`
		} `json:"datasource"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // rows
}

type dashboard struct {
	UID        string  `json:"uid"`
	Title      string  `json:"title"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name       string `json:"name"`
			Datasource struct {
				UID string `json:"uid"`
			} `json:"datasource"`
			Query struct {
				Query string `json:"query"`
			} `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

// labelValuesRe is Grafana's label_values(selector, label) variable query.
var labelValuesRe = regexp.MustCompile(`^label_values\((.+),\s*[a-zA-Z_][a-zA-Z0-9_]*\)$`)

// dashboardQueries reads every shipped dashboard, checks its structure, and returns its queries.
func dashboardQueries(t *testing.T) []query {
	t.Helper()
	var qs []query
	uids := map[string]string{}
	files := Dashboards()
	if len(files) != 3 {
		t.Errorf("%d dashboards shipped, want cluster, jobs and autoscaler", len(files))
	}
	for file, b := range files {
		var d dashboard
		if err := json.Unmarshal(b, &d); err != nil {
			t.Errorf("%s: %v", file, err)
			continue
		}
		if d.UID == "" || d.Title == "" {
			t.Errorf("%s: no uid or title", file)
		}
		if other, dup := uids[d.UID]; dup {
			t.Errorf("%s and %s share the uid %s", file, other, d.UID)
		}
		uids[d.UID] = file
		for _, v := range d.Templating.List {
			if v.Datasource.UID != DatasourceUID {
				t.Errorf("%s: variable %s uses datasource %q, not %q", file, v.Name, v.Datasource.UID, DatasourceUID)
			}
			m := labelValuesRe.FindStringSubmatch(v.Query.Query)
			if m == nil {
				t.Errorf("%s: variable %s: %q is not label_values(selector, label)", file, v.Name, v.Query.Query)
				continue
			}
			qs = append(qs, query{where: file + " / variable " + v.Name, expr: m[1]})
		}
		ids := map[int]bool{}
		var walk func([]panel)
		walk = func(ps []panel) {
			for _, p := range ps {
				where := fmt.Sprintf("%s / %q", file, p.Title)
				if ids[p.ID] {
					t.Errorf("%s: panel id %d used twice", where, p.ID)
				}
				ids[p.ID] = true
				if p.Type != "row" {
					if p.GridPos.W < 1 || p.GridPos.H < 1 || p.GridPos.X+p.GridPos.W > 24 {
						t.Errorf("%s: gridPos %+v does not fit Grafana's 24 columns", where, p.GridPos)
					}
					if p.Datasource.UID != DatasourceUID {
						t.Errorf("%s: datasource %q, not %q", where, p.Datasource.UID, DatasourceUID)
					}
					if len(p.Targets) == 0 {
						t.Errorf("%s: no query", where)
					}
				}
				for _, tg := range p.Targets {
					if tg.Datasource.UID != DatasourceUID {
						t.Errorf("%s: query %s uses datasource %q", where, tg.RefID, tg.Datasource.UID)
					}
					qs = append(qs, query{where: where + " " + tg.RefID, expr: tg.Expr})
				}
				walk(p.Panels)
			}
		}
		walk(d.Panels)
	}
	return qs
}

// grafanaVars replaces Grafana's variables by values PromQL can parse.
func grafanaVars(expr, cluster string) string {
	return strings.NewReplacer("$__rate_interval", "1m", "$__interval", "30s", "$__range", "1h", "$cluster", cluster).Replace(expr)
}

// selector is one metric a query reads: a name, or a pattern over names.
type selector struct {
	name    string
	pattern *labels.Matcher
}

func (s selector) String() string {
	if s.pattern != nil {
		return s.pattern.String()
	}
	return s.name
}

// selectors parses a query and returns the metrics it reads.
func selectors(expr string) ([]selector, error) {
	e, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	if err != nil {
		return nil, err
	}
	var out []selector
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		if vs.Name != "" {
			out = append(out, selector{name: vs.Name})
			return nil
		}
		for _, m := range vs.LabelMatchers {
			if m.Name == model.MetricNameLabel {
				out = append(out, selector{pattern: m})
			}
		}
		return nil
	})
	return out, nil
}

// TestDashboardsParse checks every shipped dashboard: valid JSON, unique uids and panel ids,
// the provisioned datasource everywhere, and PromQL that Prometheus' own parser accepts. That
// every metric they read is exposed is checked against a running cluster in
// TestMonitorLocalCluster.
func TestDashboardsParse(t *testing.T) {
	qs := dashboardQueries(t)
	if len(qs) < 30 {
		t.Errorf("only %d queries found in the dashboards", len(qs))
	}
	for _, q := range qs {
		if !strings.Contains(q.where, "/ variable ") && !strings.Contains(q.expr, `cluster="$cluster"`) {
			t.Errorf("%s: %s does not select the dashboard's cluster", q.where, q.expr)
		}
		sels, err := selectors(grafanaVars(q.expr, "c"))
		if err != nil {
			t.Errorf("%s: %s: %v", q.where, q.expr, err)
			continue
		}
		if len(sels) == 0 {
			t.Errorf("%s: %s reads no metric", q.where, q.expr)
		}
	}
	// The check can fail: a broken expression is caught.
	if _, err := selectors(grafanaVars(`sum(rate(x[$__rate_interval])`, "c")); err == nil {
		t.Error("an unbalanced expression parsed")
	}
}
