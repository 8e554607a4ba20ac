package monitoring

import "testing"

// Query is a dashboard query, for the end-to-end tests of package monitoring_test.
type Query = query

// DashboardQueries, GrafanaVars and Selectors are for the end-to-end tests.
func DashboardQueries(t *testing.T) []Query { return dashboardQueries(t) }

func GrafanaVars(expr, cluster string) string { return grafanaVars(expr, cluster) }

// Missing returns the metrics a query reads that are not among names (a pattern over names
// counts as read when it matches one of them).
func Missing(expr string, names map[string]bool) ([]string, error) {
	sels, err := selectors(expr)
	if err != nil {
		return nil, err
	}
	var missing []string
	for _, s := range sels {
		found := names[s.name]
		if s.pattern != nil {
			for n := range names {
				found = found || s.pattern.Matches(n)
			}
		}
		if !found {
			missing = append(missing, s.String())
		}
	}
	return missing, nil
}

func (q Query) Where() string { return q.where }
func (q Query) Expr() string  { return q.expr }
