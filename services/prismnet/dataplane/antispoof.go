package dataplane

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netns"
)

// The security groups match a port by its VPC's bridge and its address
// (bridged traffic in the inet family shows the bridge, not the port), so a
// port must not be able to send as another. The guard is a table in the
// bridge family, which does see the port's device: a frame a port sends
// must carry the port's MAC, and its IPv4 or ARP sender address must be
// the port's (or 0.0.0.0, for DHCP and ARP probes); anything but IPv4 and
// ARP is dropped, since the security groups filter IPv4 only. It is
// stateless (the bridge family has no conntrack on this kernel), and needs
// none.

// guard programs the node namespace's bridge-family table for a Plan.
type guard struct{ ns netns.NsHandle }

func newGuard(ns netns.NsHandle) *guard { return &guard{ns: ns} }

const guardVersion = "1"

func guardTable() *nftables.Table {
	return &nftables.Table{Family: nftables.TableFamilyBridge, Name: fwTableName}
}

// guardPort is one port's identity: what its device may send as.
type guardPort struct {
	IfName string
	MAC    net.HardwareAddr
	IP     netip.Addr
}

// guardRender lists the plan's ports in a stable order.
func guardRender(p *Plan) []guardPort {
	var out []guardPort
	for _, v := range p.VPCs {
		for _, pt := range v.Ports {
			out = append(out, guardPort{IfName: pt.IfName, MAC: pt.MAC, IP: pt.IP})
		}
	}
	slices.SortFunc(out, func(a, b guardPort) int { return strings.Compare(a.IfName, b.IfName) })
	return out
}

func guardFingerprint(ports []guardPort) string {
	var b strings.Builder
	b.WriteString(guardVersion + "\n")
	for _, p := range ports {
		fmt.Fprintf(&b, "%s %s %s\n", p.IfName, p.MAC, p.IP)
	}
	sum := sha256.Sum256([]byte(b.String()))
	return fwFPPrefix + hex.EncodeToString(sum[:16])
}

// Apply makes the table match p; it reports whether it changed anything.
func (g *guard) Apply(p *Plan) (bool, error) {
	ports := guardRender(p)
	c, err := nftables.New(nftables.WithNetNSFd(int(g.ns)))
	if err != nil {
		return false, fmt.Errorf("guard: nftables: %w", err)
	}
	fp := guardFingerprint(ports)
	cur, err := fwCurrentFingerprint(c, guardTable())
	if err != nil {
		return false, err
	}
	if cur == fp {
		return false, nil
	}
	t := guardTable()
	c.AddTable(t)
	c.DelTable(t)
	t = c.AddTable(guardTable())
	accept := nftables.ChainPolicyAccept
	fwd := c.AddChain(&nftables.Chain{Name: fwChainFwd, Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter, Policy: &accept})
	c.AddChain(&nftables.Chain{Name: fp, Table: t})
	for _, pt := range ports {
		for _, r := range guardRules(pt) {
			c.AddRule(&nftables.Rule{Table: t, Chain: fwd, Exprs: r})
		}
	}
	if err := c.Flush(); err != nil {
		return false, fmt.Errorf("guard: replace table: %w", err)
	}
	return true, nil
}

// Remove deletes the table (no error if absent).
func (g *guard) Remove() error {
	c, err := nftables.New(nftables.WithNetNSFd(int(g.ns)))
	if err != nil {
		return fmt.Errorf("guard: nftables: %w", err)
	}
	t := guardTable()
	c.AddTable(t)
	c.DelTable(t)
	if err := c.Flush(); err != nil {
		return fmt.Errorf("guard: delete table: %w", err)
	}
	return nil
}

// Ethernet types and header offsets the guard reads.
var (
	etherIPv4 = []byte{0x08, 0x00}
	etherARP  = []byte{0x08, 0x06}
	zeroIPv4  = []byte{0, 0, 0, 0}
)

// guardRules are a port's drop rules, in nft's words:
//
//	iifname D ether saddr != MAC drop
//	iifname D ether type != ip ether type != arp drop
//	iifname D ether type ip ip saddr != IP ip saddr != 0.0.0.0 drop
//	iifname D ether type arp arp saddr ether != MAC drop
//	iifname D ether type arp arp saddr ip != IP arp saddr ip != 0.0.0.0 drop
func guardRules(p guardPort) [][]expr.Any {
	in := fwIfname(expr.MetaKeyIIFNAME, p.IfName)
	ip := p.IP.As4()
	return [][]expr.Any{
		fwExprs(in, guardField(expr.PayloadBaseLLHeader, 6, expr.CmpOpNeq, p.MAC), fwVerdict(expr.VerdictDrop)),
		fwExprs(in, guardField(expr.PayloadBaseLLHeader, 12, expr.CmpOpNeq, etherIPv4),
			guardField(expr.PayloadBaseLLHeader, 12, expr.CmpOpNeq, etherARP), fwVerdict(expr.VerdictDrop)),
		fwExprs(in, guardField(expr.PayloadBaseLLHeader, 12, expr.CmpOpEq, etherIPv4),
			guardField(expr.PayloadBaseNetworkHeader, 12, expr.CmpOpNeq, ip[:]),
			guardField(expr.PayloadBaseNetworkHeader, 12, expr.CmpOpNeq, zeroIPv4), fwVerdict(expr.VerdictDrop)),
		fwExprs(in, guardField(expr.PayloadBaseLLHeader, 12, expr.CmpOpEq, etherARP),
			guardField(expr.PayloadBaseNetworkHeader, 8, expr.CmpOpNeq, p.MAC), fwVerdict(expr.VerdictDrop)),
		fwExprs(in, guardField(expr.PayloadBaseLLHeader, 12, expr.CmpOpEq, etherARP),
			guardField(expr.PayloadBaseNetworkHeader, 14, expr.CmpOpNeq, ip[:]),
			guardField(expr.PayloadBaseNetworkHeader, 14, expr.CmpOpNeq, zeroIPv4), fwVerdict(expr.VerdictDrop)),
	}
}

// guardField compares len(data) bytes at off of a header with data.
func guardField(base expr.PayloadBase, off uint32, op expr.CmpOp, data []byte) []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: base, Offset: off, Len: uint32(len(data))},
		&expr.Cmp{Op: op, Register: 1, Data: append([]byte(nil), data...)},
	}
}
