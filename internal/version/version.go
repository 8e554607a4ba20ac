// Package version says which sparkplane this is.
package version

import "runtime/debug"

// Version is set at build time with -ldflags "-X github.com/sparkplane/sparkplane/internal/version.Version=v1.2.3".
var Version = ""

// String is the version, or the module version or VCS revision Go recorded, or "dev".
func String() string {
	if Version != "" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v := bi.Main.Version; v != "" && v != "(devel)" {
			return v
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				return "dev-" + s.Value[:12]
			}
		}
	}
	return "dev"
}
