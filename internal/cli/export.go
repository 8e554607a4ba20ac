package cli

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	sparkaws "github.com/sparkplane/sparkplane/internal/provider/aws"
	"github.com/sparkplane/sparkplane/internal/provider/nomad"
)

func newExportCmd(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Write a cluster out for other tools",
		Example: `  sparkplane export terraform -f examples/aws.yaml -o infra/
  sparkplane export nomad -f analytics.yaml -o jobs/`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newExportTerraformCmd(f), newExportNomadCmd(f))
	return cmd
}

func newExportNomadCmd(f *Factory) *cobra.Command {
	var sf specFlags
	var dir string
	var force bool
	cmd := &cobra.Command{
		Use:   "nomad -f SPEC -o DIR",
		Short: "Write the Nomad job of a cluster, for teams that run nomad job run themselves",
		Long: `Write, into DIR, the cluster's Nomad job as JSON (sparkplane-NAME.nomad.json, which nomad job
run -json takes), rendered by the same code that sparkplane create registers, and a README with
the step create would take besides: the cluster's secret, TLS key and certificate in the Nomad
Variable its tasks read. Nothing is created.`,
		Example: `  sparkplane export nomad -f analytics.yaml -o jobs/   # then: nomad job run -json jobs/sparkplane-analytics.nomad.json
  sparkplane export nomad -f consul://127.0.0.1:8500/teams/analytics.yaml -o . --force`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir == "" {
				return usagef("where to? give the directory with -o DIR")
			}
			c, err := sf.load(cmd.Context(), "spark")
			if err != nil {
				return err
			}
			if c.Provider != nomad.Name {
				return usagef("export nomad writes Nomad clusters; this spec's provider is %s (set provider: nomad)", c.Provider)
			}
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
			files, err := nomad.New(nomad.Options{}).Export(c, dir, force)
			if err != nil {
				return err
			}
			for _, file := range files {
				fmt.Fprintln(f.IO.Out, file)
			}
			f.IO.Success("wrote the Nomad job of %s to %s; its README.md says what to do before nomad job run", c.Name, dir)
			return nil
		},
	}
	sf.add(cmd)
	cmd.Flags().StringVarP(&dir, "output", "o", "", "directory to write the job to")
	cmd.Flags().BoolVar(&force, "force", false, "overwrite a job file already in the directory")
	cmd.MarkFlagDirname("output")
	return cmd
}

func newExportTerraformCmd(f *Factory) *cobra.Command {
	var sf specFlags
	var dir string
	var force bool
	cmd := &cobra.Command{
		Use:   "terraform -f SPEC -o DIR",
		Short: "Write a Terraform root module for an AWS cluster, for teams that run Terraform themselves",
		Long: `Write, into DIR, a Terraform root module that makes the AWS cluster the spec describes with
sparkplane's own module: main.tf (provider, state backend, the module with the spec's values),
outputs.tf, the module under modules/sparkplane-aws, the spec the agents run by (spec.json), and
a README with the steps create would otherwise take around terraform apply: the secrets in SSM
and the software in the bucket. Nothing is created; the spec needs storage.bucket.`,
		Example: `  sparkplane export terraform -f examples/aws.yaml -o infra/spark
  sparkplane export terraform -f cluster.yaml -o . --set storage.bucket=my-spark-data --force`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir == "" {
				return usagef("where to? give the directory with -o DIR")
			}
			c, err := sf.load(cmd.Context(), "spark")
			if err != nil {
				return err
			}
			if c.Provider != sparkaws.Name {
				return usagef("export terraform writes AWS clusters; this spec's provider is %s (set provider: aws)", c.Provider)
			}
			files, err := sparkaws.Export(c, dir, force)
			if err != nil {
				return err
			}
			for _, file := range files {
				fmt.Fprintln(f.IO.Out, file)
			}
			f.IO.Success("wrote a root module for %s to %s; its README.md says what to do before terraform apply", c.Name, dir)
			return nil
		},
	}
	sf.add(cmd)
	cmd.Flags().StringVarP(&dir, "output", "o", "", "directory to write the root module to")
	cmd.Flags().BoolVar(&force, "force", false, "overwrite a root module already in the directory")
	cmd.MarkFlagDirname("output")
	return cmd
}
