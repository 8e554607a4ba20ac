// Package consulspec reads cluster specs kept in Consul's KV store, as seed 003 keeps its
// clusters' parameters there: `-f consul://HOST:PORT/KEY`. The spec is then decoded as strictly
// as a file, its errors naming the key (consul://HOST:PORT/KEY:LINE:COLUMN).
package consulspec

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/hashicorp/consul/api"
)

// Scheme starts a spec's name when it is kept in Consul.
const Scheme = "consul://"

// Is says whether a -f argument names a spec in Consul.
func Is(name string) bool { return strings.HasPrefix(name, Scheme) }

// Read returns the value of the key a consul:// URI names. The URI's host and port are Consul's
// HTTP API (without them, Consul's standard environment: CONSUL_HTTP_ADDR, else
// 127.0.0.1:8500); ?dc=DC reads another datacenter. The token and TLS settings come from
// Consul's standard environment (CONSUL_HTTP_TOKEN or CONSUL_HTTP_TOKEN_FILE, CONSUL_HTTP_SSL,
// CONSUL_CACERT, …), as the consul command's.
func Read(ctx context.Context, uri string) ([]byte, error) {
	u, err := url.Parse(uri)
	if err != nil || u.Scheme != "consul" {
		return nil, fmt.Errorf("%s: write a spec in Consul as consul://HOST:PORT/KEY, e.g. consul://127.0.0.1:8500/sparkplane/analytics.yaml", uri)
	}
	key := strings.TrimPrefix(u.Path, "/")
	if key == "" || strings.HasSuffix(key, "/") {
		return nil, fmt.Errorf("%s: name a key, e.g. consul://127.0.0.1:8500/sparkplane/analytics.yaml (a key ending in / is a folder)", uri)
	}
	cfg := api.DefaultConfig()
	if u.Host != "" {
		cfg.Address = u.Host
	}
	for k := range u.Query() {
		if k != "dc" {
			return nil, fmt.Errorf("%s: unknown parameter %q; the one parameter is ?dc=DATACENTER", uri, k)
		}
	}
	client, err := api.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", uri, err)
	}
	opts := (&api.QueryOptions{Datacenter: u.Query().Get("dc")}).WithContext(ctx)
	pair, _, err := client.KV().Get(key, opts)
	var se api.StatusError
	switch {
	case errors.As(err, &se) && (se.Code == 401 || se.Code == 403):
		return nil, fmt.Errorf("%s: Consul refused to read the key (%s); give a token that may read it in CONSUL_HTTP_TOKEN or CONSUL_HTTP_TOKEN_FILE", uri, strings.TrimSpace(se.Body))
	case err != nil && ctx.Err() != nil:
		return nil, ctx.Err()
	case err != nil:
		return nil, fmt.Errorf("%s: cannot read it from Consul at %s: %w", uri, cfg.Address, err)
	case pair == nil:
		return nil, fmt.Errorf("%s: no such key in Consul's KV store at %s; store the spec there first: consul kv put %s @cluster.yaml", uri, cfg.Address, key)
	}
	return pair.Value, nil
}
