package dataplane

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/vishvananda/netns"
)

// NamedNSDir is where `ip netns` (and netns.NewNamed) keep named
// namespaces.
const NamedNSDir = "/var/run/netns"

// inNS runs f on a thread switched into ns, and switches it back. A thread
// that cannot be switched back is never unlocked, so Go retires it rather
// than let other goroutines run in the wrong namespace.
func inNS(ns netns.NsHandle, f func() error) error {
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer orig.Close()
	if err := netns.Set(ns); err != nil {
		runtime.UnlockOSThread()
		return err
	}
	ferr := f()
	if err := netns.Set(orig); err != nil {
		return fmt.Errorf("returning to the original namespace: %w", err) // thread stays locked: it dies with its goroutine
	}
	runtime.UnlockOSThread()
	return ferr
}

// newNamedNS creates the named namespace name (like `ip netns add`)
// without moving the calling goroutine into it.
func newNamedNS(name string) (netns.NsHandle, error) {
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return 0, err
	}
	defer orig.Close()
	ns, err := netns.NewNamed(name)
	if serr := netns.Set(orig); serr != nil {
		if err == nil {
			ns.Close()
		}
		return 0, fmt.Errorf("returning to the original namespace: %w", serr)
	}
	runtime.UnlockOSThread()
	return ns, err
}

// writeSysctl sets a /proc/sys value inside ns (net.* values are per
// namespace: the kernel picks the opening thread's), and reports whether
// it was different.
func writeSysctl(ns netns.NsHandle, key, value string) (changed bool, err error) {
	err = inNS(ns, func() error {
		p := filepath.Join("/proc/sys", filepath.FromSlash(key))
		cur, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if strings.TrimSpace(string(cur)) == value {
			return nil
		}
		changed = true
		return os.WriteFile(p, []byte(value), 0o644)
	})
	return changed, err
}

// namedNSes lists the named namespaces whose names start with prefix.
func namedNSes(prefix string) ([]string, error) {
	ents, err := os.ReadDir(NamedNSDir)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if len(e.Name()) > len(prefix) && e.Name()[:len(prefix)] == prefix {
			out = append(out, e.Name())
		}
	}
	return out, nil
}
