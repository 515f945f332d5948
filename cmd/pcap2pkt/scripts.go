package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/pcap2pkt/pcap2pkt/parser"
	"github.com/urfave/cli/v2"
)

var defineFlag = &cli.StringSliceFlag{
	Name:    "define",
	Aliases: []string{"D"},
	Usage:   "define a symbol for scripts as packetdrill does, NAME=VALUE (repeatable)",
}

func fmtCommand() *cli.Command {
	return &cli.Command{
		Name:      "fmt",
		Usage:     "print scripts in canonical form",
		ArgsUsage: "SCRIPT...",
		Description: `Prints each script in canonical form to standard output. Comments are kept,
and so are numbers as written (+.1), line breaks inside calls and -D symbols
(no -D is needed); times are right-aligned in the column most of the script's
times end in, and blanks between tokens are evened out.
With -w the files are rewritten in place (atomically); with -l their names are
listed when their formatting differs; with -d a diff is shown, and the exit code
is 1 when there is one (as gofmt -d users script it). '-' reads standard input.

   pcap2pkt fmt test.pkt
   pcap2pkt fmt -w tests/*.pkt
   pcap2pkt fmt -l tests/*.pkt               # the files fmt -w would change
   git diff --name-only '*.pkt' | xargs pcap2pkt fmt -d`,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "w", Usage: "rewrite the files in place"},
			&cli.BoolFlag{Name: "l", Usage: "list the files whose formatting differs"},
			&cli.BoolFlag{Name: "d", Usage: "show a diff instead of the formatted text; exit 1 if there is one"},
			defineFlag,
		},
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return failf(exitInput, "fmt: no script given (usage: pcap2pkt fmt [-w|-l|-d] SCRIPT...; '-' for standard input)")
			}
			if n := btoi(c.Bool("w")) + btoi(c.Bool("l")) + btoi(c.Bool("d")); n > 1 {
				return failf(exitInput, "fmt: -w, -l and -d cannot be used together")
			}
			if c.Bool("w") && slices.Contains(c.Args().Slice(), "-") {
				return failf(exitInput, "fmt: -w cannot rewrite standard input")
			}
			cfg, err := parserConfig(c)
			if err != nil {
				return err
			}
			// A symbol prints as written, so its value is not needed.
			cfg.AllowUndefined = true
			bad, differ := false, false
			for _, name := range c.Args().Slice() {
				d, err := fmtOne(c, name, cfg)
				if err != nil {
					printErrors(c.App.ErrWriter, err)
					bad = true
				}
				differ = differ || d
			}
			switch {
			case bad:
				return reported(exitInput)
			case differ && c.Bool("d"):
				return reported(exitFail)
			}
			return nil
		},
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// fmtOne formats one script as the flags say; differ reports whether its
// formatting differs from its text.
func fmtOne(c *cli.Context, name string, cfg *parser.Config) (differ bool, err error) {
	s, src, err := parseScriptArg(c, name, cfg)
	if err != nil {
		return false, err
	}
	out := parser.Format(s)
	differ = !bytes.Equal(out, src)
	switch {
	case c.Bool("w"):
		if !differ {
			return false, nil
		}
		return true, writeFileAtomic(name, out)
	case c.Bool("l"):
		if differ {
			_, err = fmt.Fprintln(c.App.Writer, s.File)
		}
		return differ, err
	case c.Bool("d"):
		if differ {
			_, err = c.App.Writer.Write(unifiedDiff(s.File, src, out))
		}
		return differ, err
	default:
		_, err = c.App.Writer.Write(out)
		return differ, err
	}
}

// stdinName stands for standard input in messages, as gofmt says it.
const stdinName = "<standard input>"

// parseScriptArg is parseScriptFile for a name on the command line, where
// '-' is standard input.
func parseScriptArg(c *cli.Context, name string, cfg *parser.Config) (*parser.Script, []byte, error) {
	if name != "-" {
		return parseScriptFile(name, cfg)
	}
	src, err := io.ReadAll(c.App.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", stdinName, err)
	}
	s, err := parser.ParseFile(stdinName, src, cfg)
	if err != nil {
		return nil, nil, err
	}
	return s, src, nil
}

func checkCommand() *cli.Command {
	return &cli.Command{
		Name:      "check",
		Usage:     "parse scripts and check them without running them",
		ArgsUsage: "SCRIPT...",
		Description: `Parses each script and runs static checks: unknown system calls, TCP flags and
options, times that go backwards, outbound packets before any socket exists.
'-' reads standard input. Prints nothing and exits 0 when all scripts are clean; prints file:line:col: message
for each problem (up to 10 per file) and exits 2 otherwise.

   pcap2pkt check test.pkt
   pcap2pkt check -D TFO_COOKIE=3021b9d889017eeb tests/*.pkt`,
		Flags: []cli.Flag{defineFlag},
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return failf(exitInput, "check: no script given (usage: pcap2pkt check SCRIPT...)")
			}
			cfg, err := parserConfig(c)
			if err != nil {
				return err
			}
			failed := false
			for _, name := range c.Args().Slice() {
				if err := checkOne(c, name, cfg); err != nil {
					printErrors(c.App.ErrWriter, err)
					failed = true
				}
			}
			if failed {
				return reported(exitInput)
			}
			return nil
		},
	}
}

func checkOne(c *cli.Context, name string, cfg *parser.Config) error {
	s, _, err := parseScriptArg(c, name, cfg)
	if err != nil {
		return err
	}
	if errs := parser.Check(s); len(errs) > 0 {
		return errs
	}
	return nil
}

// printErrors prints one line per error: each of a parser.ErrorList, or the
// error itself.
func printErrors(w io.Writer, err error) {
	var list parser.ErrorList
	if errors.As(err, &list) {
		for _, e := range list {
			fmt.Fprintln(w, e)
		}
		return
	}
	fmt.Fprintln(w, err)
}

// parseScriptFile reads and parses a script file, turning the usual read
// failures into messages that name the file. It returns the text too.
func parseScriptFile(name string, cfg *parser.Config) (*parser.Script, []byte, error) {
	src, err := os.ReadFile(name)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, nil, fmt.Errorf("%s: no such file", name)
	case err != nil:
		return nil, nil, fmt.Errorf("%s: %w", name, err)
	}
	s, err := parser.ParseFile(name, src, cfg)
	if err != nil {
		return nil, nil, err
	}
	return s, src, nil
}

func parserConfig(c *cli.Context) (*parser.Config, error) {
	defs, err := parseDefines(c.StringSlice("define"))
	if err != nil {
		return nil, err
	}
	return &parser.Config{Defines: defs}, nil
}

func parseDefines(list []string) (map[string]string, error) {
	defs := map[string]string{}
	for _, d := range list {
		name, value, ok := bytes.Cut([]byte(d), []byte("="))
		if !ok || len(name) == 0 {
			return nil, failf(exitInput, "-D %q: want NAME=VALUE", d)
		}
		defs[string(name)] = string(value)
	}
	return defs, nil
}

// writeFileAtomic replaces name with data so that a reader sees either the
// old or the new file, never a half-written one.
func writeFileAtomic(name string, data []byte) error {
	return writeAtomic(name, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// writeScriptAtomic writes script s to name as writeFileAtomic does,
// printing it straight into the file: a script of a long connection has
// tens of megabytes of text.
func writeScriptAtomic(name string, s *parser.Script) error {
	return writeAtomic(name, func(w io.Writer) error { return parser.Print(w, s) })
}

// writeAtomic replaces name with what write writes, as writeFileAtomic.
func writeAtomic(name string, write func(io.Writer) error) error {
	mode := os.FileMode(0o644)
	if fi, err := os.Stat(name); err == nil {
		mode = fi.Mode().Perm()
	}
	tmp, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".*")
	if err != nil {
		// The temporary file's name means nothing to the user.
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return fmt.Errorf("%s: cannot create a file in %s: %w", name, filepath.Dir(name), err)
	}
	defer os.Remove(tmp.Name())
	if err := write(tmp); err != nil {
		tmp.Close()
		return fmt.Errorf("%s: %w", name, err)
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("%s: %w", name, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if err := os.Rename(tmp.Name(), name); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}
