package cli

import (
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/sparkplane/sparkplane/internal/agent"
	"github.com/sparkplane/sparkplane/internal/node"
	"github.com/sparkplane/sparkplane/internal/provider/aws"
	"github.com/sparkplane/sparkplane/internal/provider/hosts"
	"github.com/sparkplane/sparkplane/internal/provider/nomad"
)

func newAgentCmd(f *Factory) *cobra.Command {
	var configPath, ec2Path, hostsPath string
	var inNomad bool
	cmd := &cobra.Command{
		Use:   "agent --config FILE | --ec2 NODE.JSON | --nomad | --hosts NODE.JSON",
		Short: "Run the node agent (started by providers on every node)",
		Long: `Run the agent of one cluster node. Providers start it on every node; you do not run it by
hand. The agent supervises the node's Spark daemon and serves an API authenticated by the
cluster's token. On the master it also submits and tracks jobs, adds and removes workers, and
ends the cluster when its lifetime ends.

--config FILE: an agent configuration written by a provider (local clusters).
--ec2 FILE: an EC2 instance's node.json, written by the AWS module's user-data: the agent
fetches the cluster's secret from SSM and Spark from S3, serves TLS, and on workers watches
IMDSv2 for spot interruptions and terminations.
--nomad: inside a task of a cluster's Nomad job: the agent reads its cluster from the task's
environment and the secrets its templates rendered from the cluster's Nomad variable.
--hosts FILE: on a host of a hosts cluster, the node file create wrote there over SSH; the
secret and TLS key are files beside it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if n := btoi(configPath != "") + btoi(ec2Path != "") + btoi(inNomad) + btoi(hostsPath != ""); n != 1 {
				return usagef("give one of --config, --ec2, --nomad and --hosts")
			}
			if hostsPath != "" {
				log := slog.New(slog.NewTextHandler(f.IO.ErrOut, nil))
				src, err := hosts.NodeSource(hostsPath, log)
				if err != nil {
					return err
				}
				return node.Run(ctx, src, log)
			}
			if inNomad {
				log := slog.New(slog.NewTextHandler(f.IO.ErrOut, nil))
				src, err := nomad.NodeSource(os.Getenv, log)
				if err != nil {
					return err
				}
				// A worker told to stop by Nomad decommissions first, if Nomad is moving it.
				return node.RunUntil(ctx, src, log, f.takeSIGTERM())
			}
			if ec2Path != "" {
				log := slog.New(slog.NewTextHandler(f.IO.ErrOut, nil))
				src, err := aws.NodeSource(ctx, ec2Path, log)
				if err != nil {
					return err
				}
				return node.Run(ctx, src, log)
			}
			cfg, err := agent.LoadConfig(configPath)
			if err != nil {
				return err
			}
			providers, err := f.Providers()
			if err != nil {
				return err
			}
			log := slog.New(slog.NewTextHandler(f.IO.ErrOut, nil)).With("cluster", cfg.Cluster)
			return agent.Run(ctx, cfg, agent.Deps{Providers: providers, Log: log})
		},
	}
	cmd.Flags().StringVar(&configPath, "config", "", "the agent's config file")
	cmd.Flags().StringVar(&ec2Path, "ec2", "", "an EC2 node's node.json")
	cmd.Flags().BoolVar(&inNomad, "nomad", false, "run inside a task of a cluster's Nomad job")
	cmd.Flags().StringVar(&hostsPath, "hosts", "", "a hosts cluster's node file on this host")
	return cmd
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
