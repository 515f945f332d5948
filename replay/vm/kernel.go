package vm

// A bzImage is a boot sector, real-mode setup code and a compressed vmlinux
// that decompresses itself. Under TCG the guest's decompression of a Debian
// kernel (8 MB of xz) costs about as much as the rest of the boot (5.9 s
// against 2.4 s to /init here, 11.8 s against 6.2 s in deterministic time),
// so the vmlinux is taken out once on the host, kept in a cache, and booted
// through its PVH entry point, which QEMU uses for ELF kernels.

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"debug/elf"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Kernel is a kernel image ready to boot.
type Kernel struct {
	Image   string // the file the user named
	Boot    string // the file QEMU boots: the extracted vmlinux, or Image
	Release string // what uname -r will say, e.g. 6.1.0-57-amd64
	// Note says why Boot is Image although it is a bzImage, or "".
	Note string
	// ID names the image by its content: its release and the start of its
	// SHA-256 (what a cache of results in this kernel is keyed by).
	ID string
}

// OpenKernel inspects a bzImage or vmlinux. A bzImage's vmlinux is extracted
// into cacheDir (made if missing) when it can be booted directly; an empty
// cacheDir disables the cache and boots the bzImage.
func OpenKernel(path, cacheDir string) (*Kernel, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--kernel: %w", err)
	}
	sum := sha256.Sum256(data)
	k := &Kernel{Image: path, Boot: path}
	if bytes.HasPrefix(data, []byte(elf.ELFMAG)) {
		k.Release = elfRelease(data)
		if k.Release == "" {
			return nil, fmt.Errorf("--kernel %s: an ELF file without a Linux version string: not a vmlinux", path)
		}
		if !hasPVHNote(data) {
			return nil, fmt.Errorf("--kernel %s: this vmlinux has no PVH entry point (CONFIG_PVH); give its bzImage instead", path)
		}
		k.ID = k.Release + "-" + hex.EncodeToString(sum[:8])
		return k, nil
	}
	hdr, err := parseSetupHeader(data)
	if err != nil {
		return nil, fmt.Errorf("--kernel %s: %w", path, err)
	}
	k.Release = hdr.release
	k.ID = k.Release + "-" + hex.EncodeToString(sum[:8])
	if cacheDir == "" {
		k.Note = "no cache folder for the extracted vmlinux"
		return k, nil
	}
	cached := filepath.Join(cacheDir, "vmlinux-"+k.ID)
	if _, err := os.Stat(cached); err == nil {
		k.Boot = cached
		return k, nil
	}
	vmlinux, err := decompress(hdr.payload)
	if err != nil {
		k.Note = err.Error()
		return k, nil
	}
	if !bytes.HasPrefix(vmlinux, []byte(elf.ELFMAG)) || !hasPVHNote(vmlinux) {
		k.Note = "its vmlinux has no PVH entry point (CONFIG_PVH)"
		return k, nil
	}
	if err := writeCache(cached, vmlinux); err != nil {
		k.Note = err.Error()
		return k, nil
	}
	k.Boot = cached
	return k, nil
}

// setupHeader is what we read from a bzImage's setup header (the kernel's
// Documentation/arch/x86/boot.rst).
type setupHeader struct {
	release string
	payload []byte // the compressed vmlinux
}

func parseSetupHeader(data []byte) (*setupHeader, error) {
	if len(data) < 0x250 || string(data[0x202:0x206]) != "HdrS" {
		return nil, errors.New("neither a bzImage (no HdrS setup header) nor a vmlinux (ELF)")
	}
	le := binary.LittleEndian
	version := le.Uint16(data[0x206:])
	if version < 0x208 {
		return nil, fmt.Errorf("boot protocol %d.%02d is too old (2.08 or later needed)", version>>8, version&0xff)
	}
	h := &setupHeader{}
	if p := int(le.Uint16(data[0x20e:])) + 0x200; p > 0x200 && p < len(data) {
		s := data[p:]
		if i := bytes.IndexByte(s, 0); i >= 0 {
			s = s[:i]
		}
		h.release, _, _ = strings.Cut(string(s), " ")
	}
	if h.release == "" {
		return nil, errors.New("no kernel version in the setup header")
	}
	setupSects := int(data[0x1f1])
	if setupSects == 0 {
		setupSects = 4
	}
	start := (setupSects+1)*512 + int(le.Uint32(data[0x248:]))
	end := start + int(le.Uint32(data[0x24c:]))
	if start < 0 || end > len(data) || start >= end {
		return nil, errors.New("the payload lies outside the file")
	}
	h.payload = data[start:end]
	return h, nil
}

// decompressors are the tools for the formats the kernel can compress
// itself with; gzip is read here. They are common (xz-utils is in every
// Debian); without one the bzImage boots as it is, only slower.
var decompressors = []struct {
	magic []byte
	tool  []string
}{
	{[]byte{0xfd, '7', 'z', 'X', 'Z', 0}, []string{"xz", "-dc", "--single-stream"}},
	{[]byte{0x28, 0xb5, 0x2f, 0xfd}, []string{"zstd", "-dcq"}},
	{[]byte{0x02, 0x21, 0x4c, 0x18}, []string{"lz4", "-dc"}},
	{[]byte("BZh"), []string{"bzip2", "-dc"}},
	{[]byte{0x5d, 0x00, 0x00}, []string{"xz", "-dc", "--format=lzma"}},
	{[]byte{0x89, 'L', 'Z', 'O'}, []string{"lzop", "-dc"}},
}

func decompress(payload []byte) ([]byte, error) {
	if bytes.HasPrefix(payload, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(bytes.NewReader(payload))
		if err != nil {
			return nil, fmt.Errorf("decompressing the vmlinux: %w", err)
		}
		zr.Multistream(false)
		return io.ReadAll(zr)
	}
	for _, d := range decompressors {
		if !bytes.HasPrefix(payload, d.magic) {
			continue
		}
		// All but gzip carry the decompressed size in 4 bytes at the end.
		body := payload[:len(payload)-4]
		cmd := exec.Command(d.tool[0], d.tool[1:]...)
		cmd.Stdin = bytes.NewReader(body)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil && out.Len() == 0 {
			return nil, fmt.Errorf("decompressing the vmlinux with %s: %v %s", d.tool[0], err, strings.TrimSpace(errb.String()))
		}
		return out.Bytes(), nil
	}
	return nil, errors.New("the vmlinux is compressed in a format not known here")
}

func writeCache(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".vmlinux-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// elfRelease finds the release in a vmlinux's banner, "Linux version
// RELEASE (builder) ...", skipping the format string "Linux version %s".
func elfRelease(data []byte) string {
	marker := []byte("Linux version ")
	for off := 0; ; {
		i := bytes.Index(data[off:], marker)
		if i < 0 {
			return ""
		}
		s := data[off+i+len(marker):]
		off += i + len(marker)
		end := bytes.IndexAny(s, " \x00")
		if end <= 0 || s[0] == '%' {
			continue
		}
		return string(s[:end])
	}
}

// hasPVHNote reports whether an ELF kernel has the Xen note that gives its
// 32-bit PVH entry point (XEN_ELFNOTE_PHYS32_ENTRY), which QEMU needs to
// boot an uncompressed kernel.
func hasPVHNote(data []byte) bool {
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return false
	}
	const phys32Entry = 18
	for _, p := range f.Progs {
		if p.Type != elf.PT_NOTE {
			continue
		}
		notes, err := io.ReadAll(p.Open())
		if err != nil {
			continue
		}
		for len(notes) >= 12 {
			order := f.ByteOrder
			namesz, descsz, typ := order.Uint32(notes), order.Uint32(notes[4:]), order.Uint32(notes[8:])
			nameEnd := 12 + int((namesz+3)&^3)
			next := nameEnd + int((descsz+3)&^3)
			if next > len(notes) {
				break
			}
			name := strings.TrimRight(string(notes[12:12+int(namesz)]), "\x00")
			if name == "Xen" && typ == phys32Entry {
				return true
			}
			notes = notes[next:]
		}
	}
	return false
}
