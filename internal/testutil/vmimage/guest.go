package vmimage

// The guest's scripts. Changing any of them changes the cache key (see
// recipeKey), so a machine never boots a stale initramfs.

// modules are loaded in this order: each one's dependencies come first
// (busybox insmod does not resolve them). button+evdev give the ACPI power
// button an input device that acpid watches; the rest is virtio-net.
var modules = []string{
	"button", "evdev",
	"virtio_ring", "virtio", "virtio_pci_modern_dev", "virtio_pci_legacy_dev",
	"virtio_pci", "failover", "net_failover", "virtio_net",
}

// initScript is /init. The marker is printed only once acpid watches the
// power button, so a graceful stop (QMP system_powerdown) sent as soon as the
// marker appears is never lost.
const initScript = `#!/bin/sh
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
mkdir -p /var/log /run /tmp

insmod /lib/modules/button.ko
insmod /lib/modules/evdev.ko
for i in 1 2 3 4 5 6 7 8 9 10; do
	ls /dev/input/event* >/dev/null 2>&1 && break
	sleep 0.1
done
acpid -c /etc/acpi -l /var/log/acpid.log

echo "` + Marker + `"

for m in virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci failover net_failover virtio_net; do
	insmod /lib/modules/$m.ko || echo "PHOTON-INSMOD-FAILED $m"
done
ip link set lo up

if [ -e /sys/class/net/eth0 ]; then
	ip link set eth0 up
	udhcpc -i eth0 -n -q -t 5 -T 1 -O mtu -s /etc/udhcpc.script >/dev/null 2>&1 || echo "PHOTON-DHCP-FAILED"
fi

peer=
wait=30
for arg in $(cat /proc/cmdline); do
	case "$arg" in
	photon.peer=*) peer="${arg#photon.peer=}" ;;
	photon.peer_timeout=*) wait="${arg#photon.peer_timeout=}" ;;
	esac
done
if [ -n "$peer" ]; then
	ok=
	end=$(( $(date +%s) + wait ))
	while [ $(date +%s) -lt $end ]; do
		if ping -c 1 -W 1 "$peer" >/dev/null 2>&1; then ok=1; break; fi
		sleep 0.5
	done
	if [ -n "$ok" ]; then echo "PHOTON-PING-OK $peer"; else echo "PHOTON-PING-FAILED $peer"; fi
fi

# PID 1 must never exit (the kernel panics); acpid powers the guest off.
while true; do sleep 3600; done
`

// dhcpScript is udhcpc's hook: it applies the lease (address, default
// route, MTU) and reports it on the console, where tests read it.
const dhcpScript = `#!/bin/sh
case "$1" in
deconfig)
	ip addr flush dev "$interface"
	ip link set "$interface" up
	;;
bound|renew)
	ip addr flush dev "$interface"
	ip addr add "$ip/${mask:-24}" dev "$interface"
	[ -n "$mtu" ] && ip link set dev "$interface" mtu "$mtu"
	r="${router%% *}"
	[ -n "$r" ] && ip route replace default via "$r" dev "$interface"
	echo "PHOTON-DHCP ip=$ip router=$r mtu=$(cat /sys/class/net/$interface/mtu)" >/dev/console
	;;
esac
exit 0
`

// powerScript is what busybox acpid runs for the power button
// (its built-in map names the event PWRF/00000080). -f: there is no init
// system to hand the request to; the guest has nothing to flush.
const powerScript = `#!/bin/sh
echo "PHOTON-POWEROFF" >/dev/console
sync
poweroff -f
`
