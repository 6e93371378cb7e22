// Package images keeps PlasmaVMC's image files and VM disks on disk: an
// upload streams into a temporary file, hashed on the way, fsynced and
// renamed into place (never a torn image); qemu-img inspects images and
// makes each VM's root disk a qcow2 overlay on its image.
package images

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
)

// Store is a directory of images: <dir>/<image id>/<file>.
type Store struct {
	dir string
}

// NewStore keeps images under dir.
func NewStore(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	return &Store{dir: dir}, nil
}

// Path is where an image's file lives.
func (s *Store) Path(id, file string) string { return filepath.Join(s.dir, id, file) }

// Put streams r into the image's file, returning its size and sha256.
func (s *Store) Put(id, file string, r io.Reader) (int64, string, error) {
	dir := filepath.Join(s.dir, id)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return 0, "", err
	}
	tmp, err := os.CreateTemp(dir, "."+file+".*")
	if err != nil {
		return 0, "", err
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), r)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, "", err
	}
	if err := os.Rename(tmp.Name(), s.Path(id, file)); err != nil {
		return 0, "", err
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}

// Remove deletes an image's files.
func (s *Store) Remove(id string) error { return os.RemoveAll(filepath.Join(s.dir, id)) }

// Info is what qemu-img says of a disk image.
type Info struct {
	Format      string `json:"format"`
	VirtualSize int64  `json:"virtual-size"`
	BackingFile string `json:"backing-filename"`
}

// ErrNotAnImage means qemu-img could not read the file as a disk image.
var ErrNotAnImage = errors.New("not a disk image qemu-img can read")

// Inspect reads a disk image's format and virtual size.
func Inspect(ctx context.Context, path string) (Info, error) {
	out, err := exec.CommandContext(ctx, "qemu-img", "info", "--output=json", path).Output()
	if err != nil {
		return Info{}, fmt.Errorf("%w: %v", ErrNotAnImage, err)
	}
	var in Info
	if err := json.Unmarshal(out, &in); err != nil {
		return Info{}, fmt.Errorf("%w: %v", ErrNotAnImage, err)
	}
	return in, nil
}

// Overlay makes a qcow2 disk at path backed by base (of baseFormat), of
// sizeBytes (0: the base's size): writes go to the overlay, the image is
// never changed and is shared by every VM made from it.
func Overlay(ctx context.Context, base, baseFormat, path string, sizeBytes int64) error {
	args := []string{"create", "-q", "-f", "qcow2", "-F", baseFormat, "-b", base, path}
	if sizeBytes > 0 {
		args = append(args, strconv.FormatInt(sizeBytes, 10))
	}
	if out, err := exec.CommandContext(ctx, "qemu-img", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("qemu-img create: %v: %s", err, out)
	}
	return nil
}

// Blank makes an empty qcow2 disk of sizeBytes at path.
func Blank(ctx context.Context, path string, sizeBytes int64) error {
	out, err := exec.CommandContext(ctx, "qemu-img", "create", "-q", "-f", "qcow2", path, strconv.FormatInt(sizeBytes, 10)).CombinedOutput()
	if err != nil {
		return fmt.Errorf("qemu-img create: %v: %s", err, out)
	}
	return nil
}
