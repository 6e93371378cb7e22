package qemu

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strings"
)

// ErrKVMUnavailable is returned by DetectAccel("kvm") on a host where KVM
// cannot run a stock guest; the wrapped text says which check failed.
var ErrKVMUnavailable = errors.New("kvm unavailable")

// DetectAccel resolves "auto", "kvm" or "tcg" to the accelerator QEMU gets.
// KVM needs both a usable /dev/kvm and hardware virtualisation (vmx/svm):
// some hosts expose a paravirtual /dev/kvm that opens fine but cannot boot a
// stock kernel, so the device alone is not proof.
func DetectAccel(want string) (string, error) {
	return detectAccel(want, "/dev/kvm", "/proc/cpuinfo")
}

func detectAccel(want, kvmDev, cpuinfo string) (string, error) {
	switch want {
	case "tcg":
		return "tcg", nil
	case "kvm", "auto", "":
	default:
		return "", fmt.Errorf("unknown accelerator %q (want auto, kvm or tcg)", want)
	}
	err := kvmUsable(kvmDev, cpuinfo)
	if err == nil {
		return "kvm", nil
	}
	if want == "kvm" {
		return "", err
	}
	return "tcg", nil
}

func kvmUsable(kvmDev, cpuinfo string) error {
	f, err := os.OpenFile(kvmDev, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrKVMUnavailable, err)
	}
	f.Close()
	ok, err := hasVirtFlag(cpuinfo)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrKVMUnavailable, err)
	}
	if !ok {
		return fmt.Errorf("%w: %s opens but %s has no vmx or svm flag (paravirtual KVM cannot boot a stock kernel)", ErrKVMUnavailable, kvmDev, cpuinfo)
	}
	return nil
}

func hasVirtFlag(cpuinfo string) (bool, error) {
	f, err := os.Open(cpuinfo)
	if err != nil {
		return false, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok || strings.TrimSpace(key) != "flags" {
			continue
		}
		for _, fl := range strings.Fields(val) {
			if fl == "vmx" || fl == "svm" {
				return true, nil
			}
		}
	}
	return false, sc.Err()
}
