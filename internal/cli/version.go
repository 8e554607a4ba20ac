package cli

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/sparkplane/sparkplane/internal/spec"
	"github.com/sparkplane/sparkplane/internal/version"
)

type versionInfo struct {
	Version      string   `json:"version"`
	Go           string   `json:"go"`
	Platform     string   `json:"platform"`
	Spec         string   `json:"specVersion"`
	Providers    []string `json:"providers"`
	DefaultSpark string   `json:"defaultSparkVersion"`
}

func newVersionCmd(f *Factory) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print sparkplane's version and the providers this build has",
		Example: `  sparkplane version
  sparkplane version -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			reg, err := f.Providers()
			if err != nil {
				return err
			}
			v := versionInfo{Version: version.String(), Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH,
				Spec: spec.APIVersion, Providers: reg.Names(), DefaultSpark: spec.DefaultSparkVersion}
			if output != FormatTable {
				return f.IO.Print(output, v)
			}
			fmt.Fprintf(f.IO.Out, "sparkplane %s (%s, %s)\nspec:      %s\nproviders: %v\nSpark:     %s by default\n",
				v.Version, v.Go, v.Platform, v.Spec, v.Providers, v.DefaultSpark)
			return nil
		},
	}
	addOutputFlag(cmd, &output)
	return cmd
}

func newCompletionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "completion bash|zsh|fish|powershell",
		Short: "Print a shell completion script",
		Long: `Print a completion script for your shell. For bash:

  source <(sparkplane completion bash)

or save it where your shell loads completions, e.g.
  sparkplane completion bash > /etc/bash_completion.d/sparkplane
  sparkplane completion zsh > "${fpath[1]}/_sparkplane"
  sparkplane completion fish > ~/.config/fish/completions/sparkplane.fish`,
		Args:      cobra.ExactArgs(1),
		ValidArgs: []string{"bash", "zsh", "fish", "powershell"},
		RunE: func(cmd *cobra.Command, args []string) error {
			root := cmd.Root()
			switch args[0] {
			case "bash":
				return root.GenBashCompletionV2(cmd.OutOrStdout(), true)
			case "zsh":
				return root.GenZshCompletion(cmd.OutOrStdout())
			case "fish":
				return root.GenFishCompletion(cmd.OutOrStdout(), true)
			case "powershell":
				return root.GenPowerShellCompletionWithDesc(cmd.OutOrStdout())
			}
			return usagef("unknown shell %q: use bash, zsh, fish or powershell", args[0])
		},
	}
}

// addOutputFlag adds -o/--output.
// outputFormat is -o's value: one of the formats, checked when the flag is parsed, so that a
// wrong one is a usage error that lists them.
type outputFormat struct{ v *string }

func (o outputFormat) String() string { return *o.v }
func (o outputFormat) Type() string   { return "format" }
func (o outputFormat) Set(s string) error {
	if s != FormatTable && s != FormatJSON && s != FormatYAML {
		return fmt.Errorf("%q is not a format: use table, json or yaml", s)
	}
	*o.v = s
	return nil
}

func addOutputFlag(cmd *cobra.Command, output *string) {
	*output = FormatTable
	cmd.Flags().VarP(outputFormat{output}, "output", "o", "output format: table, json or yaml")
	cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{FormatTable, FormatJSON, FormatYAML}, cobra.ShellCompDirectiveNoFileComp))
}
