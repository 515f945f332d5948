package vm

// The guest reads the host's files over 9p, and each open is a round trip
// to QEMU during which the guest idles. In deterministic time an idle guest
// jumps to its next timer, so a program started in the middle of a script
// would shift its timeline, and every start costs the host time of its
// round trips (defaults.sh's 30 sysctl runs: 2 s). The programs that
// scripts' shell lines use, their libraries and python3's standard library
// are therefore also put in the initramfs, as a layer over the host's root:
// the guest reads them from memory. Everything else still comes over 9p.

import (
	"debug/elf"
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// hotPrograms are what packetdrill scripts' shell lines and their helpers
// (upstream's defaults.sh and set_sysctls.py, synthesised scripts) run.
var hotPrograms = []string{
	"sh", "dash", "bash", "env", "sysctl", "ip", "tc", "ss", "ethtool", "python3",
	"cat", "echo", "rm", "dd", "sleep", "true", "false", "grep", "sed", "printf",
	"mkdir", "uname", "head", "tail", "tr", "cut", "ls", "timeout", "nstat", "chmod",
}

// hotFiles are read by those programs on every start: the C library's
// locale (its aliases, its charset converters' index, the time zone) and
// the programs' own configuration.
var hotFiles = []string{"/etc/ld.so.cache", "/etc/iproute2", "/etc/nsswitch.conf", "/etc/passwd", "/etc/group",
	"/etc/localtime", "/usr/share/locale/locale.alias", "/usr/lib/locale/locale-archive"}

// localeDir holds the compiled locales that are not in locale-archive.
const localeDir = "/usr/lib/locale"

// libDirs are where the dynamic loader looks after RUNPATH (ld.so.cache
// lists only libraries in these on Debian).
var libDirs = []string{"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib"}

// skipStdlib says which folders of python's standard library scripts do
// not import and would double its size; config-X.Y-ARCH holds the static
// libpython for building extensions (25 MB on Debian 12, and a link to the
// shared one, 7.7 MB more).
func skipStdlib(name string) bool {
	switch name {
	case "test", "site-packages", "dist-packages", "tkinter", "idlelib", "turtledemo", "ensurepip", "lib2to3", "pydoc_data":
		return true
	}
	return strings.HasPrefix(name, "config-")
}

var pythonName = regexp.MustCompile(`^python[0-9]+\.[0-9]+$`)

// layer is a set of host paths to copy into the initramfs: files, the
// folders above them, and the symbolic links on the way, as on the host.
// opaque are folders that the layer holds whole, so that the guest need not
// look in the host's (overlayfs stops at an opaque folder); binds are
// folders in those that the layer holds empty, for the guest to mount the
// host's over them.
type layer struct {
	entries map[string]fs.FileInfo
	links   map[string]string
	opaque  []string
	binds   []string
}

func newLayer() *layer {
	return &layer{entries: map[string]fs.FileInfo{}, links: map[string]string{}}
}

// add adds path (absolute) and what it takes to reach it; it returns the
// path with every symbolic link resolved, or "" when it does not exist.
func (l *layer) add(path string) string {
	resolved := "/"
	parts := strings.Split(strings.Trim(filepath.Clean(path), "/"), "/")
	for i := 0; i < len(parts); i++ {
		p := filepath.Join(resolved, parts[i])
		fi, err := os.Lstat(p)
		if err != nil {
			return ""
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			target, err := os.Readlink(p)
			if err != nil || len(l.links) > 10000 {
				return ""
			}
			l.entries[p], l.links[p] = fi, target
			if !filepath.IsAbs(target) {
				target = filepath.Join(resolved, target)
			}
			rest := append(strings.Split(strings.Trim(filepath.Clean(target), "/"), "/"), parts[i+1:]...)
			resolved, parts, i = "/", rest, -1
			continue
		}
		l.entries[p] = fi
		resolved = p
	}
	return resolved
}

// addTree adds a folder and everything below it, less the skipped names.
func (l *layer) addTree(dir string, skip func(name string) bool) {
	root := l.add(dir)
	if root == "" {
		return
	}
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() && skip != nil && skip(d.Name()) && p != root {
			return filepath.SkipDir
		}
		if fi, err := d.Info(); err == nil {
			if fi.Mode()&fs.ModeSymlink != 0 {
				l.add(p)
			} else if fi.Mode().IsRegular() || fi.IsDir() {
				l.entries[p] = fi
			}
		}
		return nil
	})
}

// addProgram adds a program found on path, its interpreter if it is a
// script, and the libraries it loads if it is an ELF executable.
func (l *layer) addProgram(name, path string) {
	full, err := lookPath(name, path)
	if err != nil {
		return
	}
	l.addExecutable(full, 0)
}

func (l *layer) addExecutable(file string, depth int) {
	real := l.add(file)
	if real == "" || depth > 4 {
		return
	}
	f, err := elf.Open(real)
	if err != nil {
		// A script: its interpreter.
		b := make([]byte, 256)
		if fh, err := os.Open(real); err == nil {
			n, _ := fh.Read(b)
			fh.Close()
			if line, _, _ := strings.Cut(string(b[:n]), "\n"); strings.HasPrefix(line, "#!") {
				if fields := strings.Fields(line[2:]); len(fields) > 0 {
					l.addExecutable(fields[0], depth+1)
				}
			}
		}
		return
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			if b, err := os.ReadFile(real); err == nil && p.Off+p.Filesz <= uint64(len(b)) {
				l.addExecutable(strings.TrimRight(string(b[p.Off:p.Off+p.Filesz]), "\x00"), depth+1)
			}
		}
	}
	libs, _ := f.ImportedLibraries()
	runpath, _ := f.DynString(elf.DT_RUNPATH)
	rpath, _ := f.DynString(elf.DT_RPATH)
	var dirs []string
	for _, rp := range append(runpath, rpath...) {
		for _, d := range strings.Split(rp, ":") {
			dirs = append(dirs, strings.ReplaceAll(d, "$ORIGIN", filepath.Dir(real)))
		}
	}
	for _, lib := range libs {
		for _, d := range append(dirs, libDirs...) {
			p := filepath.Join(d, lib)
			if _, seen := l.entries[p]; seen {
				break
			}
			if _, err := os.Stat(p); err == nil {
				l.addExecutable(p, depth+1)
				break
			}
		}
	}
	// python3's standard library, where a python's build puts it:
	// PREFIX/bin/pythonX.Y reads PREFIX/lib/pythonX.Y.
	if base := filepath.Base(real); pythonName.MatchString(base) && depth == 0 {
		l.addTree(filepath.Join(filepath.Dir(filepath.Dir(real)), "lib", base), skipStdlib)
	}
}

// pythonStart is what python3 reads at every start: the folders of its
// search path (less the current folder: a script's own), and the modules
// it has imported before any code of the caller's (site, and what .pth
// files in site-packages import).
const pythonStart = `import json, sys
print(json.dumps({"path": sys.path[1:], "files": [f for f in (getattr(m, "__file__", None) for m in list(sys.modules.values())) if f]}))`

// addPythonPath makes the folders of python3's search path opaque in the
// layer. python3 lists them at every start (its import system caches each
// folder's names), and overlayfs merges a folder of the layer with the
// host's by reading both: the host's over 9p, a dozen waits for the host
// per start, during which the guest's clock jumps from timer to timer (0.9 s
// of guest time per start on average, decided by the host's speed). Held
// whole in the layer, they are read from memory. The standard library's
// folders that the layer leaves out (skipStdlib) and the packages in
// site-packages that python3 does not import at its start are the host's,
// mounted over empty folders of the layer: a script that imports one reads
// it over 9p, as before.
func (l *layer) addPythonPath(env []string, path string) {
	python, err := lookPath("python3", path)
	if err != nil {
		return
	}
	cmd := exec.Command(python, "-c", pythonStart)
	cmd.Env, cmd.Dir = env, "/"
	out, err := cmd.Output()
	if err != nil {
		return
	}
	var start struct {
		Path  []string `json:"path"`
		Files []string `json:"files"`
	}
	if err := json.Unmarshal(out, &start); err != nil {
		return
	}
	// Modules imported at the start, whole (a package's folder too).
	var loaded []string
	for _, f := range start.Files {
		if real := l.add(f); real != "" {
			loaded = append(loaded, real)
			if filepath.Base(real) == "__init__.py" {
				l.addTree(filepath.Dir(real), nil)
			}
		}
	}
	for _, p := range start.Path {
		if !filepath.IsAbs(p) {
			continue
		}
		dir := l.add(p)
		if dir == "" || slices.Contains(l.opaque, dir) {
			continue
		}
		// A folder of the path inside another (site-packages in the
		// standard library's folder) is the layer's too, not the host's.
		l.binds = slices.DeleteFunc(l.binds, func(b string) bool { return b == dir })
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			continue
		}
		ents, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range ents {
			sub := filepath.Join(dir, e.Name())
			if _, ok := l.entries[sub]; ok {
				continue
			}
			fi, err := e.Info()
			if err != nil {
				continue
			}
			if !fi.IsDir() {
				// Files (.pth, modules, extensions) and links, whole.
				l.add(sub)
				continue
			}
			if slices.ContainsFunc(loaded, func(f string) bool { return strings.HasPrefix(f, sub+"/") }) {
				l.addTree(sub, nil)
				continue
			}
			l.entries[sub] = fi
			l.binds = append(l.binds, sub)
		}
		l.opaque = append(l.opaque, dir)
	}
}

// lookPath finds a program on a search path as the guest's shell will.
func lookPath(name, path string) (string, error) {
	for _, d := range filepath.SplitList(path) {
		if d == "" {
			continue
		}
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", exec.ErrNotFound
}

// hotLayer is the layer for a guest whose environment is env.
func hotLayer(env []string) *layer {
	l := newLayer()
	path := ""
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	for _, p := range hotPrograms {
		l.addProgram(p, path)
	}
	l.addPythonPath(env, path)
	files := append([]string(nil), hotFiles...)
	for _, d := range libDirs {
		files = append(files, filepath.Join(d, "gconv", "gconv-modules.cache"))
	}
	for _, name := range localeNames(env) {
		files = append(files, filepath.Join(localeDir, name))
	}
	for _, f := range files {
		if fi, err := os.Stat(f); err == nil && fi.IsDir() {
			l.addTree(f, nil)
		} else {
			l.add(f)
		}
	}
	return l
}

// localeNames are the folder names under localeDir that the C library may
// open for the environment's locale: each name as given and with its
// charset normalized (C.UTF-8 is in C.utf8). C.UTF-8 is always among them:
// python3 switches the C locale to it.
func localeNames(env []string) []string {
	names := []string{"C.UTF-8", "C.utf8"}
	for _, kv := range env {
		name, value, _ := strings.Cut(kv, "=")
		if (name != "LANG" && !strings.HasPrefix(name, "LC_")) || value == "" || strings.ContainsRune(value, '/') {
			continue
		}
		names = append(names, value)
		if lang, charset, ok := strings.Cut(value, "."); ok {
			charset, modifier, _ := strings.Cut(charset, "@")
			norm := strings.Map(func(r rune) rune {
				switch {
				case r >= 'A' && r <= 'Z':
					return r - 'A' + 'a'
				case r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
					return r
				}
				return -1
			}, charset)
			if modifier != "" {
				norm += "@" + modifier
			}
			names = append(names, lang+"."+norm)
		}
	}
	return names
}

// write adds the layer's entries to the archive under prefix, folders
// before what they hold.
func (l *layer) write(c *cpioWriter, prefix string) error {
	paths := make([]string, 0, len(l.entries))
	for p := range l.entries {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		fi := l.entries[p]
		name := prefix + p
		mtime := fi.ModTime().Unix()
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			c.addTimed(name, cpioSymlink|0o777, mtime, []byte(l.links[p]))
		case fi.IsDir():
			c.addTimed(name, cpioDir|int(fi.Mode().Perm()), mtime, nil)
		case fi.Mode().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				continue // unreadable: the guest reads it over 9p, or fails as the host would
			}
			c.addTimed(name, cpioFile|int(fi.Mode().Perm()), mtime, data)
		}
	}
	return c.err
}
