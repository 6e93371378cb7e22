package qemu

import (
	"errors"
	"fmt"

	"github.com/vishvananda/netlink"
)

// CreateTap creates a persistent tap device (IFF_TAP|IFF_NO_PI, with
// vnet_hdr for virtio-net offloads) and sets it up. It is persistent so it
// exists before QEMU opens it by name and survives QEMU restarts; the caller
// deletes it with DeleteTap. Up is set here because QEMU with script=no never
// touches the link state: the carrier then follows QEMU attaching.
func CreateTap(name string) error {
	if name == "" || len(name) > 15 {
		return fmt.Errorf("tap name %q: must be 1-15 characters", name)
	}
	tap := &netlink.Tuntap{
		LinkAttrs: netlink.LinkAttrs{Name: name},
		Mode:      netlink.TUNTAP_MODE_TAP,
		// TUN_EXCL: fail on an existing device instead of silently
		// attaching to it (e.g. another VM's tap).
		Flags: netlink.TUNTAP_NO_PI | netlink.TUNTAP_VNET_HDR | netlink.TUNTAP_TUN_EXCL,
	}
	if err := netlink.LinkAdd(tap); err != nil {
		return fmt.Errorf("create tap %s: %w", name, err)
	}
	if err := netlink.LinkSetUp(tap); err != nil {
		_ = DeleteTap(name)
		return fmt.Errorf("set tap %s up: %w", name, err)
	}
	return nil
}

// DeleteTap removes a tap device; a tap that does not exist is not an error,
// so cleanup paths can call it unconditionally.
func DeleteTap(name string) error {
	link, err := netlink.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil
		}
		return fmt.Errorf("find tap %s: %w", name, err)
	}
	if err := netlink.LinkDel(link); err != nil {
		return fmt.Errorf("delete tap %s: %w", name, err)
	}
	return nil
}
