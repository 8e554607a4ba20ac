// Command sparkplane turns a short YAML spec into a running Apache Spark cluster, submits and
// tracks jobs on it, and tears it down. The same binary runs on every node as the agent.
package main

import (
	"os"

	"github.com/sparkplane/sparkplane/internal/cli"
)

func main() { os.Exit(cli.Main()) }
