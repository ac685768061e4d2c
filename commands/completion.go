package commands

import (
	"fmt"
	"io"

	"github.com/urfave/cli/v2"
)

// The bash and zsh scripts ask jwkctl itself, as urfave/cli v2 completes:
// the words typed so far plus --generate-bash-completion print the
// candidates (commands, or flags after a "-"). The words are passed as
// arguments, never through eval, so nothing typed on the line is run.
const bashCompletion = `# bash completion for jwkctl; load with: source <(jwkctl completion bash)
_jwkctl_complete() {
  local cur=${COMP_WORDS[COMP_CWORD]}
  local -a words=("${COMP_WORDS[@]:0:COMP_CWORD}")
  local opts
  if [[ $cur == -* ]]; then
    opts=$("${words[@]}" "$cur" --generate-bash-completion 2>/dev/null)
  else
    opts=$("${words[@]}" --generate-bash-completion 2>/dev/null)
  fi
  local IFS=$'\n'
  COMPREPLY=($(compgen -W "$opts" -- "$cur"))
}
complete -o bashdefault -o default -F _jwkctl_complete jwkctl
`

const zshCompletion = `#compdef jwkctl
# zsh completion for jwkctl; load with: source <(jwkctl completion zsh)
# (after compinit), or save as _jwkctl in a directory on $fpath.
_jwkctl() {
  local -a opts
  local cur=${words[CURRENT]}
  if [[ $cur == -* ]]; then
    opts=("${(@f)$(${words[1,CURRENT-1]} $cur --generate-bash-completion 2>/dev/null)}")
  else
    opts=("${(@f)$(${words[1,CURRENT-1]} --generate-bash-completion 2>/dev/null)}")
  fi
  if [[ -n ${opts[1]} ]]; then
    _describe 'values' opts
  else
    _files
  fi
}
if [[ $zsh_eval_context[-1] == loadautofunc ]]; then
  _jwkctl "$@"
else
  compdef _jwkctl jwkctl
fi
`

func completionCommand() *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print a shell completion script (bash, zsh or fish)",
		ArgsUsage: "SHELL",
		Description: "Prints a script that completes jwkctl's commands and flags.\n\n" +
			"   bash: source <(jwkctl completion bash)     (or save it in /etc/bash_completion.d/jwkctl)\n" +
			"   zsh:  source <(jwkctl completion zsh)      (after compinit; or save it as _jwkctl on $fpath)\n" +
			"   fish: jwkctl completion fish > ~/.config/fish/completions/jwkctl.fish",
		Action: runCompletion,
	}
}

func runCompletion(c *cli.Context) error {
	if c.NArg() != 1 {
		return cli.Exit("completion takes one shell: bash, zsh or fish", ExitUsage)
	}
	return writeCompletion(c.App, c.App.Writer, c.Args().First())
}

func writeCompletion(app *cli.App, w io.Writer, shell string) error {
	var script string
	switch shell {
	case "bash":
		script = bashCompletion
	case "zsh":
		script = zshCompletion
	case "fish":
		// fish completes from a static list, which urfave/cli writes from
		// the command tree.
		s, err := app.ToFishCompletion()
		if err != nil {
			return fmt.Errorf("fish completion: %w", err)
		}
		script = s
	default:
		return cli.Exit(fmt.Sprintf("completion: unknown shell %q: bash, zsh or fish", shell), ExitUsage)
	}
	_, err := io.WriteString(w, script)
	return err
}
