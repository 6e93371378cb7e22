// Package flagenv gives every command-line flag an environment fallback by
// one rule: --data-dir ↔ PHOTON_DATA_DIR. A flag on the command line wins
// over the environment, which wins over the default.
package flagenv

import (
	"flag"
	"fmt"
	"os"
	"strings"
)

// EnvName is the environment variable of flag name.
func EnvName(name string) string {
	return "PHOTON_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// Parse parses args into fs, then fills each flag not given on the command
// line from its environment variable, if set.
func Parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || err != nil {
			return
		}
		if v, ok := os.LookupEnv(EnvName(f.Name)); ok {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("%s=%q: %w", EnvName(f.Name), v, e)
			}
		}
	})
	return err
}

// Usage prints fs's flags with their environment variables.
func Usage(fs *flag.FlagSet, synopsis string) func() {
	return func() {
		out := fs.Output()
		fmt.Fprintf(out, "usage: %s\n\nflags (each also read from its environment variable):\n", synopsis)
		fs.VisitAll(func(f *flag.Flag) {
			fmt.Fprintf(out, "  --%s (%s, default %q)\n      %s\n", f.Name, EnvName(f.Name), f.DefValue, f.Usage)
		})
	}
}
