package cli

import (
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/sparkplane/sparkplane/internal/agent"
)

func newAgentCmd(f *Factory) *cobra.Command {
	var configPath string
	cmd := &cobra.Command{
		Use:   "agent --config FILE",
		Short: "Run the node agent (started by providers on every node)",
		Long: `Run the agent of one cluster node. Providers start it on every node with a config file they
write; you do not run it by hand. The agent supervises the node's Spark daemon and serves an API
authenticated by the cluster's token. On the master it also submits and tracks jobs, adds and
removes workers, and destroys the cluster when its lifetime ends.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := agent.LoadConfig(configPath)
			if err != nil {
				return err
			}
			providers, err := f.Providers()
			if err != nil {
				return err
			}
			log := slog.New(slog.NewTextHandler(f.IO.ErrOut, nil)).With("cluster", cfg.Cluster)
			return agent.Run(cmd.Context(), cfg, agent.Deps{Providers: providers, Log: log})
		},
	}
	cmd.Flags().StringVar(&configPath, "config", "", "the agent's config file")
	cmd.MarkFlagRequired("config")
	return cmd
}
