package cli

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/sparkplane/sparkplane/internal/provider"
	"github.com/sparkplane/sparkplane/internal/provider/aws"
	"github.com/sparkplane/sparkplane/internal/provider/hosts"
	"github.com/sparkplane/sparkplane/internal/provider/local"
	"github.com/sparkplane/sparkplane/internal/provider/nomad"
	"github.com/sparkplane/sparkplane/internal/spark"
	"github.com/sparkplane/sparkplane/internal/spec"
	"github.com/sparkplane/sparkplane/internal/state"
)

// Factory hands commands their dependencies, made on first use.
type Factory struct {
	IO     *IOStreams
	Getenv func(string) string

	storeOnce sync.Once
	store     *state.Store
	storeErr  error

	// noInterruptNote is set by commands that Ctrl-C simply ends (a live view, a server run in
	// the foreground), for which "cleaning up" would be news.
	noInterruptNote atomic.Bool
	// instantInterrupt: see exitOnInterrupt.
	instantInterrupt atomic.Bool
	// trustNewHosts is --trust-new-hosts: the hosts provider adds hosts known_hosts lacks.
	trustNewHosts bool
	// term: see takeSIGTERM.
	term atomic.Pointer[chan struct{}]
}

// takeSIGTERM says that the running command handles SIGTERM itself (an agent whose node may be
// draining): SIGTERM closes the channel instead of cancelling the command's context. Ctrl-C
// still cancels.
func (f *Factory) takeSIGTERM() <-chan struct{} {
	ch := make(chan struct{})
	f.term.Store(&ch)
	return ch
}

// quietInterrupt says that Ctrl-C ends the running command normally.
func (f *Factory) quietInterrupt() { f.noInterruptNote.Store(true) }

// exitOnInterrupt says that the running command has nothing to clean up and need not be asked
// to stop: the first Ctrl-C or SIGTERM ends the program at once (exit 130). For long
// computations that change nothing, such as simulate.
func (f *Factory) exitOnInterrupt() { f.instantInterrupt.Store(true) }

// Home is sparkplane's state directory: $SPARKPLANE_HOME, else $XDG_STATE_HOME/sparkplane, else
// ~/.local/state/sparkplane.
func (f *Factory) Home() (string, error) {
	if h := f.Getenv("SPARKPLANE_HOME"); h != "" {
		return filepath.Abs(h)
	}
	if x := f.Getenv("XDG_STATE_HOME"); x != "" {
		return filepath.Join(x, "sparkplane"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("no state directory: set SPARKPLANE_HOME (%w)", err)
	}
	return filepath.Join(home, ".local", "state", "sparkplane"), nil
}

// CacheDir holds downloaded Spark releases: $SPARKPLANE_CACHE, else the user's cache directory.
func (f *Factory) CacheDir() (string, error) {
	if c := f.Getenv("SPARKPLANE_CACHE"); c != "" {
		return filepath.Abs(c)
	}
	if x := f.Getenv("XDG_CACHE_HOME"); x != "" {
		return filepath.Join(x, "sparkplane"), nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(d, "sparkplane"), nil
}

// StatePath is the user's state database.
func (f *Factory) StatePath() (string, error) {
	h, err := f.Home()
	if err != nil {
		return "", err
	}
	return filepath.Join(h, "state.db"), nil
}

// Store opens the state database once.
func (f *Factory) Store() (*state.Store, error) {
	f.storeOnce.Do(func() {
		path, err := f.StatePath()
		if err != nil {
			f.storeErr = err
			return
		}
		f.store, f.storeErr = state.Open(path)
	})
	return f.store, f.storeErr
}

// Close releases what the factory opened.
func (f *Factory) Close() {
	if f.store != nil {
		f.store.Close()
	}
}

// builtInProviders are the providers this build has, as Providers registers them.
var builtInProviders = []string{local.Name, aws.Name, nomad.Name, hosts.Name}

// Providers is the registry of providers this build has.
func (f *Factory) Providers() (*provider.Registry, error) {
	home, err := f.Home()
	if err != nil {
		return nil, err
	}
	statePath, err := f.StatePath()
	if err != nil {
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find the sparkplane executable: %w", err)
	}
	r := provider.NewRegistry()
	r.Register(local.Name, func() (provider.Provider, error) {
		return local.New(local.Options{Root: home, AgentBinary: self, StateDB: statePath}), nil
	})
	r.Register(aws.Name, func() (provider.Provider, error) {
		cache, err := f.CacheDir()
		if err != nil {
			return nil, err
		}
		return aws.New(aws.Options{Root: home, Terraform: f.Getenv("SPARKPLANE_TERRAFORM"),
			PluginCache: cmp.Or(f.Getenv("TF_PLUGIN_CACHE_DIR"), filepath.Join(cache, "terraform-plugins"))}), nil
	})
	r.Register(nomad.Name, func() (provider.Provider, error) { return nomad.New(nomad.Options{}), nil })
	r.Register(hosts.Name, func() (provider.Provider, error) {
		// Hosts added after create get the Spark create would use, found (or downloaded) again.
		return hosts.New(hosts.Options{Root: home, TrustNewHosts: f.trustNewHosts, Getenv: f.Getenv,
			Spark: func(ctx context.Context, c *spec.Cluster) (*spark.Distribution, error) {
				return f.resolveSpark(ctx, c, "", &progress{io: f.IO})
			}}), nil
	})
	return r, nil
}
