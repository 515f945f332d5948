package vm

import (
	"bufio"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// moduleIndex is what modprobe reads from a kernel's module folder
// (/lib/modules/RELEASE): the dependencies, the built-in modules and the
// aliases the kernel asks for (net-pf-10, rtnl-link-veth, tcp-bbr...).
type moduleIndex struct {
	dir     string
	deps    map[string][]string // name -> relative paths: its own, then its dependencies
	builtin map[string]bool
	aliases [][2]string // pattern, module name
}

// moduleName is a module's canonical name: no folder, no .ko suffix, '_'
// for '-'.
func moduleName(p string) string {
	b := path.Base(p)
	if i := strings.Index(b, ".ko"); i >= 0 {
		b = b[:i]
	}
	return strings.ReplaceAll(b, "-", "_")
}

func readModuleIndex(dir string) (*moduleIndex, error) {
	ix := &moduleIndex{dir: dir, deps: map[string][]string{}, builtin: map[string]bool{}}
	err := eachLine(filepath.Join(dir, "modules.dep"), func(l string) {
		mod, deps, ok := strings.Cut(l, ":")
		if !ok {
			return
		}
		ix.deps[moduleName(mod)] = append([]string{mod}, strings.Fields(deps)...)
	})
	if err != nil {
		return nil, err
	}
	// The other two files are optional: an index without them only lacks
	// aliases and knows no built-in module.
	_ = eachLine(filepath.Join(dir, "modules.builtin"), func(l string) { ix.builtin[moduleName(l)] = true })
	_ = eachLine(filepath.Join(dir, "modules.alias"), func(l string) {
		f := strings.Fields(l)
		if len(f) == 3 && f[0] == "alias" {
			ix.aliases = append(ix.aliases, [2]string{f[1], moduleName(f[2])})
		}
	})
	return ix, nil
}

func eachLine(name string, fn func(string)) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" && !strings.HasPrefix(l, "#") {
			fn(l)
		}
	}
	return sc.Err()
}

// resolve returns the files to load for name (a module or an alias), in
// load order (dependencies first), or builtin when the kernel has it
// already. An unknown name is an error.
func (ix *moduleIndex) resolve(name string) (files []string, builtin bool, err error) {
	n := moduleName(name)
	if ix.builtin[n] {
		return nil, true, nil
	}
	deps, ok := ix.deps[n]
	if !ok {
		for _, a := range ix.aliases {
			if m, _ := path.Match(a[0], name); m {
				return ix.resolve(a[1])
			}
		}
		return nil, false, fmt.Errorf("module %s not found in %s", name, ix.dir)
	}
	// modules.dep lists a module's dependencies so that each comes after
	// those it needs loaded first: load them from the last.
	for i := len(deps) - 1; i >= 1; i-- {
		files = append(files, filepath.Join(ix.dir, deps[i]))
	}
	return append(files, filepath.Join(ix.dir, deps[0])), false, nil
}
