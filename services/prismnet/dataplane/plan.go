// Package dataplane makes one node's Linux kernel match a Plan: per VPC a
// bridge, a VXLAN device toward the other nodes hosting the VPC, a router
// namespace holding the subnets' gateways (with DHCP), the ports' devices
// on the bridge, and security groups as stateful nftables rules. It knows
// nothing of ChainFire: the agent computes the Plan from PrismNET's records.
package dataplane

import (
	"fmt"
	"net"
	"net/netip"
)

// Plan is everything one node's kernel should hold for PrismNET.
type Plan struct {
	VPCs []VPC
}

// VPC is one VPC as one node hosts it: present only while a port of the VPC
// is bound to the node.
type VPC struct {
	ID      string
	VNI     uint32       // the VXLAN network identifier, unique per VPC
	Subnets []Subnet     // gateways the router holds; DHCP settings
	Ports   []Port       // ports bound to this node
	Peers   []netip.Addr // VTEPs of the other nodes hosting the VPC
	Remote  []RemotePort // ports of the VPC bound to other nodes
}

// Subnet is a subnet's gateway and DHCP settings.
type Subnet struct {
	ID      string
	CIDR    netip.Prefix
	Gateway netip.Addr
	DNS     []netip.Addr
	DHCP    bool
}

// Port is a port bound to this node: a device (tap or veth end) named
// IfName in the node's namespace, attached to the VPC's bridge.
type Port struct {
	ID       string
	IfName   string
	MAC      net.HardwareAddr
	IP       netip.Addr
	SubnetID string
	// Ingress and Egress are the allow rules of the port's security groups
	// (their union); traffic no rule allows is dropped. Replies of allowed
	// connections always pass (the rules are stateful).
	Ingress []Rule
	Egress  []Rule
}

// RemotePort is a port of the VPC bound to another node: its MAC is
// forwarded to that node's VTEP, and the router knows its address.
type RemotePort struct {
	ID   string
	MAC  net.HardwareAddr
	IP   netip.Addr
	VTEP netip.Addr
}

// Rule allows one kind of traffic. Remote lists the other ends it allows
// (the rule's CIDR, or the addresses of a remote group's members); a rule
// with an empty Remote allows nothing.
type Rule struct {
	Protocol string // "tcp", "udp", "icmp" or "any"
	PortMin  uint16 // tcp/udp destination port range; 0 and 0 mean every port
	PortMax  uint16
	Remote   []netip.Prefix
}

// MTU is the default MTU of every VPC's devices: a 1500-byte underlay less
// VXLAN's 50 bytes of headers. DHCP hands it to instances. An underlay with
// a larger MTU gives instances up to MaxMTU (Config.MTU).
const (
	MTU         = 1450
	MaxMTU      = 1500
	VXLANHeader = 50
)

// VXLANPort is the UDP port VXLAN uses between nodes (IANA's).
const VXLANPort = 4789

// Device names: a fixed prefix and the VNI in hex, so that the agent can
// tell what it created (and remove what is no longer wanted) and Linux's
// 15-byte limit holds.
const (
	bridgePrefix    = "pnb-"
	vxlanPrefix     = "pnx-"
	routerPrefix    = "pnr-" // the bridge end of the router's veth
	routerTmpPrefix = "pnq-" // the router's end until it moves into the router
	routerIf        = "gw0"  // the router namespace's end
)

// BridgeName is the VPC's bridge.
func BridgeName(vni uint32) string { return fmt.Sprintf("%s%06x", bridgePrefix, vni) }

// VXLANName is the VPC's VXLAN device.
func VXLANName(vni uint32) string { return fmt.Sprintf("%s%06x", vxlanPrefix, vni) }

// RouterVethName is the bridge end of the veth into the VPC's router.
func RouterVethName(vni uint32) string { return fmt.Sprintf("%s%06x", routerPrefix, vni) }

// RouterMAC is the MAC of the VPC's router on every node (a distributed
// router: each node answers for the gateways itself, and its neighbor
// table knows every port, so it never needs another node's ARP reply).
func RouterMAC(vni uint32) net.HardwareAddr {
	return net.HardwareAddr{0xfa, 0x16, 0x3f, byte(vni >> 16), byte(vni >> 8), byte(vni)}
}

// ReservedIfName reports whether name has a prefix the data plane uses for
// its own devices (a port may not be bound to such a device).
func ReservedIfName(name string) bool {
	for _, p := range []string{bridgePrefix, vxlanPrefix, routerPrefix, routerTmpPrefix} {
		if len(name) >= len(p) && name[:len(p)] == p {
			return true
		}
	}
	return false
}
