package vm

import (
	"fmt"
	"io"
)

// cpioWriter writes the "newc" cpio format, the one the kernel unpacks into
// its initial root file system. Only what an initramfs needs: folders,
// regular files and symbolic links, all owned by root.
type cpioWriter struct {
	w   io.Writer
	ino int
	err error
}

const (
	cpioDir     = 0o040000
	cpioFile    = 0o100000
	cpioSymlink = 0o120000
)

// add writes one entry made here, with no modification time.
func (c *cpioWriter) add(name string, mode int, data []byte) error {
	return c.addTimed(name, mode, 0, data)
}

// addTimed writes one entry: its header, name and data, each padded to four
// bytes. mtime (seconds since 1970) is kept as the kernel unpacks it: a
// copy of a host file keeps the host's modification time, which python3
// checks before it uses a compiled module (__pycache__/*.pyc records its
// source's), so that the copies of the standard library's compiled modules
// are used and not compiled anew at every import.
func (c *cpioWriter) addTimed(name string, mode int, mtime int64, data []byte) error {
	if c.err != nil {
		return c.err
	}
	c.ino++
	nlink := 1
	if mode&cpioDir != 0 {
		nlink = 2
	}
	hdr := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		c.ino, mode, 0, 0, nlink, uint32(mtime), len(data), 0, 0, 0, 0, len(name)+1, 0)
	c.write([]byte(hdr))
	c.write(append([]byte(name), 0))
	c.pad(len(hdr) + len(name) + 1)
	c.write(data)
	c.pad(len(data))
	return c.err
}

func (c *cpioWriter) write(b []byte) {
	if c.err == nil {
		_, c.err = c.w.Write(b)
	}
}

func (c *cpioWriter) pad(n int) {
	if r := n % 4; r != 0 {
		c.write(make([]byte, 4-r))
	}
}

// close writes the trailer entry that ends the archive.
func (c *cpioWriter) close() error {
	c.ino = -1 // the trailer's inode is 0
	return c.add("TRAILER!!!", 0, nil)
}
