// Package vmimage builds the tiny bootable guest PlasmaVMC's tests and
// benchmark run under QEMU: a Debian cloud kernel plus a busybox-static
// initramfs, made from Debian packages (the only thing these machines can
// download) and cached so each machine builds it once.
//
// What the guest prints on ttyS0, one line each, for tests to wait on:
//
//	PHOTON-GUEST-UP                                  init runs, power button handled (Marker)
//	PHOTON-DHCP ip=<ip> router=<router> mtu=<mtu>    eth0 got and applied a lease
//	PHOTON-DHCP-FAILED                               eth0 exists but got no lease
//	PHOTON-PING-OK <ip> / PHOTON-PING-FAILED <ip>    result of pinging photon.peer
//	PHOTON-POWEROFF                                  ACPI power button pressed
//
// Kernel parameters it reads (see Append): photon.peer=<ip>, the address to
// ping once the network is up, and photon.peer_timeout=<seconds> (default 30).
package vmimage

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
)

// Image is a direct-boot guest: qemu -kernel Kernel -initrd Initrd -append Append(...).
type Image struct {
	Kernel, Initrd string
}

// Marker is what the guest prints on its serial console once its init runs
// and the ACPI power button is handled (so a graceful stop works from then on).
const Marker = "PHOTON-GUEST-UP"

// kernelMeta is the Debian metapackage whose dependency names the current
// versioned cloud kernel; cloud kernels are small and boot fast under TCG.
const kernelMeta = "linux-image-cloud-amd64"

// recipeVersion is bumped when the build changes in a way the scripts below
// do not show (archive layout, file names).
const recipeVersion = "1"

// recipeKey names a cache entry: it changes whenever the guest would differ,
// so an old image is never reused after the recipe changes. The kernel's
// version is deliberately not part of it: any cloud kernel boots the guest,
// and a warm cache then needs no apt at all.
func recipeKey() string {
	h := sha256.New()
	for _, s := range []string{recipeVersion, kernelMeta, "busybox-static", initScript, dhcpScript, powerScript, strings.Join(modules, ",")} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return "v" + recipeVersion + "-" + hex.EncodeToString(h.Sum(nil))[:12]
}

// DefaultCacheDir is the per-machine cache Build uses when given "".
func DefaultCacheDir() string {
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "photon", "vmimage")
	}
	return filepath.Join(os.TempDir(), "photon-vmimage")
}

// Build returns the image, building it on first use into
// cacheDir/<recipe key>/ ("" means DefaultCacheDir). It is safe to call from
// several processes at once: builds are serialized by a lock file and land in
// the cache by an atomic rename, so a reader never sees a half-written image.
func Build(cacheDir string) (Image, error) {
	if cacheDir == "" {
		cacheDir = DefaultCacheDir()
	}
	final := filepath.Join(cacheDir, recipeKey())
	img := Image{Kernel: filepath.Join(final, "vmlinuz"), Initrd: filepath.Join(final, "initrd.gz")}
	if complete(img) {
		return img, nil
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return Image{}, fmt.Errorf("vmimage: %w", err)
	}
	unlock, err := lock(filepath.Join(cacheDir, ".lock"))
	if err != nil {
		return Image{}, err
	}
	defer unlock()
	if complete(img) { // another process built it while we waited
		return img, nil
	}
	tmp, err := os.MkdirTemp(cacheDir, ".build-")
	if err != nil {
		return Image{}, fmt.Errorf("vmimage: %w", err)
	}
	defer os.RemoveAll(tmp) // a no-op once renamed
	if err := build(tmp); err != nil {
		return Image{}, err
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return Image{}, fmt.Errorf("vmimage: %w", err)
	}
	if err := os.Rename(tmp, final); err != nil && !complete(img) {
		return Image{}, fmt.Errorf("vmimage: install into cache: %w", err)
	}
	return img, nil
}

func complete(img Image) bool {
	for _, p := range []string{img.Kernel, img.Initrd} {
		if st, err := os.Stat(p); err != nil || st.Size() == 0 {
			return false
		}
	}
	return true
}

// lock takes an exclusive flock, so concurrent test binaries wait for one
// build instead of each downloading the kernel on a 2-core machine.
func lock(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("vmimage: %w", err)
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("vmimage: lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil // closing releases the lock
}

// build downloads and unpacks the packages and writes vmlinuz and initrd.gz into dir.
func build(dir string) error {
	work, err := os.MkdirTemp("", "photon-vmimage-")
	if err != nil {
		return fmt.Errorf("vmimage: %w", err)
	}
	defer os.RemoveAll(work)
	// apt's download sandbox user (_apt) must be able to write here, or apt
	// warns and falls back to downloading as root.
	if err := os.Chmod(work, 0o777); err != nil {
		return fmt.Errorf("vmimage: %w", err)
	}

	kpkg, err := withAptLists(kernelPackage)
	if err != nil {
		return err
	}
	if _, err := withAptLists(func() (string, error) {
		return run(work, "apt-get", "download", kpkg, "busybox-static")
	}); err != nil {
		return err
	}
	debs, err := filepath.Glob(filepath.Join(work, "*.deb"))
	if err != nil || len(debs) != 2 {
		return fmt.Errorf("vmimage: expected 2 .deb files in %s, found %v (%v)", work, debs, err)
	}
	root := filepath.Join(work, "root")
	for _, d := range debs {
		if _, err := run(work, "dpkg", "-x", d, root); err != nil {
			return err
		}
	}

	kernels, _ := filepath.Glob(filepath.Join(root, "boot", "vmlinuz-*"))
	if len(kernels) != 1 {
		return fmt.Errorf("vmimage: expected one boot/vmlinuz-* in %s, found %v", kpkg, kernels)
	}
	kernel, err := os.ReadFile(kernels[0])
	if err != nil {
		return fmt.Errorf("vmimage: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "vmlinuz"), kernel, 0o644); err != nil {
		return fmt.Errorf("vmimage: %w", err)
	}
	initrd, err := initramfs(root)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "initrd.gz"), initrd, 0o644); err != nil {
		return fmt.Errorf("vmimage: %w", err)
	}
	return nil
}

// kernelPackage asks apt which versioned kernel the metapackage stands for
// (e.g. linux-image-6.1.0-56-cloud-amd64).
func kernelPackage() (string, error) {
	out, err := run("", "apt-cache", "depends", kernelMeta)
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && f[0] == "Depends:" && strings.HasPrefix(f[1], "linux-image-") {
			return f[1], nil
		}
	}
	return "", fmt.Errorf("vmimage: apt-cache depends %s names no linux-image package:\n%s", kernelMeta, out)
}

// withAptLists runs f and, if it fails, refreshes apt's package lists once
// and retries: a fresh machine may have none, and updating costs time and
// network on every other machine.
func withAptLists(f func() (string, error)) (string, error) {
	out, err := f()
	if err == nil {
		return out, nil
	}
	if _, uerr := run("", "apt-get", "update"); uerr != nil {
		return "", fmt.Errorf("%w (and apt-get update failed: %v)", err, uerr)
	}
	return f()
}

func run(dir, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("vmimage: %s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// initramfs writes the gzip'd newc archive from the unpacked packages in root.
func initramfs(root string) ([]byte, error) {
	busybox, err := os.ReadFile(filepath.Join(root, "bin", "busybox"))
	if err != nil {
		return nil, fmt.Errorf("vmimage: busybox-static: %w", err)
	}
	mods, err := findModules(root)
	if err != nil {
		return nil, err
	}

	var buf bytes.Buffer
	gz, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression) // zero header time: reproducible
	a := &newcWriter{w: gz}
	for _, d := range []string{"bin", "sbin", "usr", "usr/bin", "usr/sbin", "dev", "proc", "sys",
		"etc", "etc/acpi", "etc/acpi/PWRF", "lib", "lib/modules", "run", "tmp", "var", "var/log"} {
		a.Dir(d, 0o755)
	}
	// Without /dev/console the kernel gives init no stdout and the guest
	// prints nothing before devtmpfs is mounted.
	a.CharDev("dev/console", 0o600, 5, 1)
	a.File("bin/busybox", 0o755, busybox)
	a.Symlink("bin/sh", "busybox") // for #!/bin/sh; init installs the other applets
	a.File("init", 0o755, []byte(initScript))
	a.File("etc/udhcpc.script", 0o755, []byte(dhcpScript))
	a.File("etc/acpi/PWRF/00000080", 0o755, []byte(powerScript))
	for _, m := range modules {
		a.File("lib/modules/"+m+".ko", 0o644, mods[m])
	}
	if err := a.Close(); err != nil {
		return nil, fmt.Errorf("vmimage: write initramfs: %w", err)
	}
	if err := gz.Close(); err != nil {
		return nil, fmt.Errorf("vmimage: write initramfs: %w", err)
	}
	return buf.Bytes(), nil
}

// findModules reads the .ko files of modules from the kernel package,
// decompressing .ko.xz/.ko.zst (Debian 12 ships them uncompressed, later
// releases compress them, and busybox insmod loads only plain ELF).
func findModules(root string) (map[string][]byte, error) {
	want := make(map[string]bool, len(modules))
	for _, m := range modules {
		want[m] = true
	}
	found := make(map[string][]byte, len(modules))
	err := filepath.WalkDir(filepath.Join(root, "lib", "modules"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		name := d.Name()
		var data []byte
		switch {
		case strings.HasSuffix(name, ".ko") && want[strings.TrimSuffix(name, ".ko")]:
			data, err = os.ReadFile(p)
		case strings.HasSuffix(name, ".ko.xz") && want[strings.TrimSuffix(name, ".ko.xz")]:
			data, err = decompress("xz", p)
		case strings.HasSuffix(name, ".ko.zst") && want[strings.TrimSuffix(name, ".ko.zst")]:
			data, err = decompress("zstd", p)
		default:
			return nil
		}
		if err != nil {
			return fmt.Errorf("vmimage: module %s: %w", p, err)
		}
		found[strings.SplitN(name, ".", 2)[0]] = data
		return nil
	})
	if err != nil {
		return nil, err
	}
	var missing []string
	for _, m := range modules {
		if found[m] == nil {
			missing = append(missing, m)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("vmimage: kernel package lacks modules %v", missing)
	}
	return found, nil
}

func decompress(tool, path string) ([]byte, error) {
	out, err := exec.Command(tool, "-dc", path).Output()
	if err != nil {
		return nil, fmt.Errorf("%s -dc: %w", tool, err)
	}
	return out, nil
}

// Append returns the kernel command line for the guest: the serial console
// (where tests and PlasmaVMC's console API read), kernel messages limited to
// warnings so the log stays readable, and params as key=value in a stable
// order, e.g. {"photon.peer": "10.0.2.2"} for the address the guest pings.
func Append(params map[string]string) string {
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := []string{"console=ttyS0", "loglevel=4"}
	for _, k := range keys {
		v := params[k]
		if strings.ContainsAny(v, " \t") {
			v = `"` + v + `"`
		}
		parts = append(parts, k+"="+v)
	}
	return strings.Join(parts, " ")
}
