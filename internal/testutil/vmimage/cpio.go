package vmimage

import (
	"fmt"
	"io"
	"io/fs"
	"syscall"
)

// newcWriter writes a cpio archive in the "newc" (SVR4, no CRC) format, the
// one the kernel unpacks as an initramfs. Writing it by hand keeps the build
// free of the cpio tool and of mknod: a device node is just a header here,
// so /dev/console needs no privileges.
type newcWriter struct {
	w   io.Writer
	ino uint32
	err error
}

// header writes one entry header plus its name; data (if any) follows.
func (c *newcWriter) header(name string, mode uint32, size int, rdevMajor, rdevMinor uint32) {
	if c.err != nil {
		return
	}
	c.ino++
	nlink := uint32(1)
	if mode&syscall.S_IFMT == syscall.S_IFDIR {
		nlink = 2
	}
	// Fields: magic, ino, mode, uid, gid, nlink, mtime, filesize, devmajor,
	// devminor, rdevmajor, rdevminor, namesize (with NUL), check.
	// mtime 0 keeps the archive reproducible.
	h := fmt.Sprintf("070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
		c.ino, mode, 0, 0, nlink, 0, size, 0, 0, rdevMajor, rdevMinor, len(name)+1, 0)
	c.write([]byte(h + name + "\x00"))
	c.pad(110 + len(name) + 1)
}

func (c *newcWriter) write(b []byte) {
	if c.err == nil {
		_, c.err = c.w.Write(b)
	}
}

// pad aligns to the 4-byte boundary newc requires after names and data.
func (c *newcWriter) pad(n int) {
	if r := n % 4; r != 0 {
		c.write(make([]byte, 4-r))
	}
}

// Dir adds a directory.
func (c *newcWriter) Dir(name string, perm fs.FileMode) {
	c.header(name, syscall.S_IFDIR|uint32(perm.Perm()), 0, 0, 0)
}

// File adds a regular file with the given contents.
func (c *newcWriter) File(name string, perm fs.FileMode, data []byte) {
	c.header(name, syscall.S_IFREG|uint32(perm.Perm()), len(data), 0, 0)
	c.write(data)
	c.pad(len(data))
}

// Symlink adds a symbolic link; its data is the target.
func (c *newcWriter) Symlink(name, target string) {
	c.header(name, syscall.S_IFLNK|0o777, len(target), 0, 0)
	c.write([]byte(target))
	c.pad(len(target))
}

// CharDev adds a character device node.
func (c *newcWriter) CharDev(name string, perm fs.FileMode, major, minor uint32) {
	c.header(name, syscall.S_IFCHR|uint32(perm.Perm()), 0, major, minor)
}

// Close writes the trailer the kernel expects at the end of the archive.
func (c *newcWriter) Close() error {
	c.header("TRAILER!!!", 0, 0, 0, 0)
	return c.err
}
