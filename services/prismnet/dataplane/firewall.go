package dataplane

// Security groups as one nftables table in the node's namespace.
//
// Bridged IPv4 traffic reaches the inet hooks only through br_netfilter
// (bridge-nf-call-iptables=1), and there iifname/oifname are the BRIDGE,
// not the port's device: a port is therefore identified by (its VPC's
// bridge, its IP). Its chains are jumped to from the forward chain:
//
//	egress chains end a match with "return", so that a packet between two
//	local ports still reaches the destination's ingress chain (an "accept"
//	there would end the whole hook and skip it); ingress chains accept.
//
// Each VPC's bridged traffic gets its own conntrack zone (the VNI's low 16
// bits), so that two VPCs using the same CIDR never share conntrack entries:
// without zones a packet in one VPC could pass as the reply of a connection
// in another (TestFirewallVPCsSameCIDR shows it does). VNIs equal in their
// low 16 bits cannot share a node: fwRender refuses them. A connection
// opened before the first Apply lives in zone 0; its later packets are
// looked up in the VPC's zone, so mid-stream ACKs are picked up as new
// flows (judged by the rules) and its FINs are dropped as invalid.
//
// The table is replaced whole in one netlink batch; conntrack entries live
// outside it, so established connections survive a change. A fingerprint of
// the rendered rules, kept as the name of an empty chain, lets a restarted
// agent see that the kernel already holds the plan and change nothing.
//
// Limits: matching is by address, so a port that spoofs its source address
// escapes its egress chain (the inet family cannot see the bridge port);
// DHCP server replies (udp 67→68) pass from any port; IPv6 is not filtered.

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

const (
	fwTableName = "photon_prismnet"
	// fwVersion is part of the fingerprint: bump it when the encoding of
	// the same rendered rules changes, so that agents rewrite the table.
	fwVersion   = "1"
	fwFPPrefix  = "fp_"
	fwChainPre  = "prerouting"
	fwChainFwd  = "forward"
	fwEgressPfx = "eg_"
	fwIngresPfx = "in_"
)

// fwSetIDMu serialises table encoding: github.com/google/nftables numbers
// sets from a package-level counter that its per-connection lock does not
// protect.
var fwSetIDMu sync.Mutex

// firewall programs the node namespace's nftables for a Plan.
type firewall struct{ ns netns.NsHandle }

// newFirewall returns a firewall for the namespace ns (the caller keeps
// ownership of the handle).
func newFirewall(ns netns.NsHandle) *firewall { return &firewall{ns: ns} }

// Apply makes table inet photon_prismnet match p and turns on
// bridge-nf-call-iptables, without which bridged traffic never reaches the
// table. It reports whether it changed anything; applying the plan the
// kernel already holds changes nothing, also from a fresh process.
func (f *firewall) Apply(p *Plan) (changed bool, err error) {
	spec, err := fwRender(p)
	if err != nil {
		return false, err
	}
	changed, err = fwEnableBridgeNF(f.ns)
	if err != nil {
		return changed, err
	}
	c, err := nftables.New(nftables.WithNetNSFd(int(f.ns)))
	if err != nil {
		return changed, fmt.Errorf("firewall: nftables: %w", err)
	}
	fp := spec.fingerprint()
	cur, err := fwCurrentFingerprint(c, fwTable())
	if err != nil {
		return changed, err
	}
	if cur == fp {
		return changed, nil
	}
	fwSetIDMu.Lock()
	defer fwSetIDMu.Unlock()
	t := fwTable()
	// Add first so that the delete cannot fail on a missing table: the
	// whole replacement is one atomic batch.
	c.AddTable(t)
	c.DelTable(t)
	if err := fwEncode(c, spec, fp); err != nil {
		return changed, err
	}
	if err := c.Flush(); err != nil {
		return changed, fmt.Errorf("firewall: replace table: %w", err)
	}
	return true, nil
}

// Remove deletes the table (no error if absent). bridge-nf-call-iptables is
// left on: other users of the namespace may rely on it.
func (f *firewall) Remove() error {
	c, err := nftables.New(nftables.WithNetNSFd(int(f.ns)))
	if err != nil {
		return fmt.Errorf("firewall: nftables: %w", err)
	}
	t := fwTable()
	c.AddTable(t)
	c.DelTable(t)
	if err := c.Flush(); err != nil {
		return fmt.Errorf("firewall: delete table: %w", err)
	}
	return nil
}

func fwTable() *nftables.Table {
	return &nftables.Table{Family: nftables.TableFamilyINet, Name: fwTableName}
}

// fwCurrentFingerprint returns the fingerprint the table holds, or "" if
// there is no table or it holds no single fingerprint.
func fwCurrentFingerprint(c *nftables.Conn, t *nftables.Table) (string, error) {
	chains, err := c.ListChainsOfTableFamily(t.Family)
	if err != nil {
		return "", fmt.Errorf("firewall: list chains: %w", err)
	}
	var fp []string
	for _, ch := range chains {
		if ch.Table != nil && ch.Table.Name == t.Name && strings.HasPrefix(ch.Name, fwFPPrefix) {
			fp = append(fp, ch.Name)
		}
	}
	if len(fp) != 1 {
		return "", nil
	}
	return fp[0], nil
}

// fwEnableBridgeNF sets bridge-nf-call-iptables=1 in ns. /proc/sys/net is
// resolved by the opening thread's namespace, so a dedicated locked thread
// switches into ns; if it cannot switch back it is left locked and dies
// with its goroutine.
func fwEnableBridgeNF(ns netns.NsHandle) (changed bool, err error) {
	changed, err = writeSysctl(ns, "net/bridge/bridge-nf-call-iptables", "1")
	if err != nil {
		return changed, fmt.Errorf("firewall: enable bridge-nf-call-iptables: %w", err)
	}
	return changed, nil
}

// fwDir is the direction of a port's chain.
type fwDir int

const (
	fwEgress fwDir = iota
	fwIngress
)

// fwSpec is the rendered table: what fwEncode writes, in a form tests can
// compare without root.
type fwSpec struct {
	Zones  []fwZone  // prerouting: the VPC's conntrack zone
	Jumps  []fwJump  // forward: per local port, egress jumps first
	Chains []fwChain // the ports' chains, in Jumps order
}

// fwZone assigns a bridge's traffic a conntrack zone.
type fwZone struct {
	Bridge string
	Zone   uint16
}

// fwJump sends a port's traffic to its chain.
type fwJump struct {
	Bridge string
	IP     netip.Addr
	Dir    fwDir
	Chain  string
}

// fwChain is a port's allow list; what no rule allows is dropped.
type fwChain struct {
	Name  string
	Dir   fwDir
	Rules []fwRule
}

// fwRule allows traffic of Proto (0 any) to destination ports
// PortMin..PortMax (0..0 any) from or to Remote (nil: any address).
type fwRule struct {
	Proto   uint8
	PortMin uint16
	PortMax uint16
	Remote  []netip.Prefix
}

// fwRender turns a plan into the table's rules. The output is canonical
// (VPCs by VNI, ports by IP, rules sorted and deduplicated) so that the
// fingerprint does not depend on the order the agent built the plan in.
func fwRender(p *Plan) (fwSpec, error) {
	var s fwSpec
	if p == nil {
		return s, nil
	}
	vpcs := slices.Clone(p.VPCs)
	slices.SortFunc(vpcs, func(a, b VPC) int { return fwCmpU32(a.VNI, b.VNI) })
	zones := map[uint16]uint32{}
	var ingress []fwJump
	for _, v := range vpcs {
		zone := uint16(v.VNI)
		if other, dup := zones[zone]; dup {
			return fwSpec{}, fmt.Errorf("firewall: VNIs %d and %d share conntrack zone %d (zones are 16-bit)", other, v.VNI, zone)
		}
		zones[zone] = v.VNI
		br := BridgeName(v.VNI)
		s.Zones = append(s.Zones, fwZone{Bridge: br, Zone: zone})
		ports := slices.Clone(v.Ports)
		slices.SortFunc(ports, func(a, b Port) int { return a.IP.Compare(b.IP) })
		for i, pt := range ports {
			if !pt.IP.Is4() {
				return fwSpec{}, fmt.Errorf("firewall: port %q: IP %v is not IPv4", pt.ID, pt.IP)
			}
			if i > 0 && ports[i-1].IP == pt.IP {
				return fwSpec{}, fmt.Errorf("firewall: VNI %d: ports %q and %q share IP %v", v.VNI, ports[i-1].ID, pt.ID, pt.IP)
			}
			eg := fwChain{Name: fmt.Sprintf("%s%d_%d", fwEgressPfx, v.VNI, i), Dir: fwEgress}
			in := fwChain{Name: fmt.Sprintf("%s%d_%d", fwIngresPfx, v.VNI, i), Dir: fwIngress}
			var err error
			if eg.Rules, err = fwRenderRules(pt.Egress); err != nil {
				return fwSpec{}, fmt.Errorf("firewall: port %q egress: %w", pt.ID, err)
			}
			if in.Rules, err = fwRenderRules(pt.Ingress); err != nil {
				return fwSpec{}, fmt.Errorf("firewall: port %q ingress: %w", pt.ID, err)
			}
			s.Jumps = append(s.Jumps, fwJump{Bridge: br, IP: pt.IP, Dir: fwEgress, Chain: eg.Name})
			ingress = append(ingress, fwJump{Bridge: br, IP: pt.IP, Dir: fwIngress, Chain: in.Name})
			s.Chains = append(s.Chains, eg, in)
		}
	}
	s.Jumps = append(s.Jumps, ingress...)
	return s, nil
}

// fwRenderRules normalises a port's rules for one direction.
func fwRenderRules(rules []Rule) ([]fwRule, error) {
	out := []fwRule{}
	for _, r := range rules {
		var fr fwRule
		switch r.Protocol {
		case "any":
		case "tcp":
			fr.Proto = unix.IPPROTO_TCP
		case "udp":
			fr.Proto = unix.IPPROTO_UDP
		case "icmp":
			fr.Proto = unix.IPPROTO_ICMP
		default:
			return nil, fmt.Errorf("unknown protocol %q", r.Protocol)
		}
		if fr.Proto == unix.IPPROTO_TCP || fr.Proto == unix.IPPROTO_UDP {
			fr.PortMin, fr.PortMax = r.PortMin, r.PortMax
			if fr.PortMax == 0 {
				fr.PortMax = fr.PortMin
			}
			if fr.PortMin > fr.PortMax {
				return nil, fmt.Errorf("port range %d-%d is empty", r.PortMin, r.PortMax)
			}
			if fr.PortMin == 0 && fr.PortMax == 0xffff {
				fr.PortMax = 0 // every port
			}
		}
		remote, anyAddr, ok := fwNormalizeRemote(r.Remote)
		if !ok {
			continue // allows nothing
		}
		if !anyAddr {
			fr.Remote = remote
		}
		out = append(out, fr)
	}
	slices.SortFunc(out, func(a, b fwRule) int { return strings.Compare(a.text("addr"), b.text("addr")) })
	return slices.CompactFunc(out, func(a, b fwRule) bool { return a.text("addr") == b.text("addr") }), nil
}

// fwNormalizeRemote keeps the IPv4 prefixes, masked, sorted and without
// those inside another. anyAddr reports a /0; ok is false if nothing is left.
func fwNormalizeRemote(in []netip.Prefix) (out []netip.Prefix, anyAddr, ok bool) {
	for _, p := range in {
		if !p.IsValid() {
			continue
		}
		a := p.Addr().Unmap()
		if !a.Is4() {
			continue
		}
		bits := p.Bits()
		if p.Addr().Is4In6() {
			bits -= 96
		}
		if bits < 0 {
			continue
		}
		if bits == 0 {
			return nil, true, true
		}
		out = append(out, netip.PrefixFrom(a, bits).Masked())
	}
	// Sorted by address then shorter prefix first, a prefix inside another
	// comes after it.
	slices.SortFunc(out, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	kept := out[:0]
	for _, p := range out {
		if len(kept) > 0 && kept[len(kept)-1].Contains(p.Addr()) {
			continue
		}
		kept = append(kept, p)
	}
	return kept, false, len(kept) > 0
}

func fwCmpU32(a, b uint32) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func fwProtoName(p uint8) string {
	switch p {
	case unix.IPPROTO_TCP:
		return "tcp"
	case unix.IPPROTO_UDP:
		return "udp"
	case unix.IPPROTO_ICMP:
		return "icmp"
	}
	return fmt.Sprint(p)
}

// text renders a rule's match in nft syntax, addr naming the remote end
// ("ip saddr" or "ip daddr").
func (r fwRule) text(addr string) string {
	var parts []string
	if r.Proto != 0 {
		parts = append(parts, "meta l4proto "+fwProtoName(r.Proto))
	}
	switch {
	case r.PortMin == 0 && r.PortMax == 0:
	case r.PortMin == r.PortMax:
		parts = append(parts, fmt.Sprintf("th dport %d", r.PortMin))
	default:
		parts = append(parts, fmt.Sprintf("th dport %d-%d", r.PortMin, r.PortMax))
	}
	switch len(r.Remote) {
	case 0:
	case 1:
		parts = append(parts, fmt.Sprintf("%s %v", addr, r.Remote[0]))
	default:
		ps := make([]string, len(r.Remote))
		for i, p := range r.Remote {
			ps[i] = p.String()
		}
		parts = append(parts, fmt.Sprintf("%s { %s }", addr, strings.Join(ps, ", ")))
	}
	return strings.Join(parts, " ")
}

// String renders the table in nft-like syntax: the fingerprint's input and
// a readable form for tests and logs.
func (s fwSpec) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "chain %s\n", fwChainPre)
	for _, z := range s.Zones {
		fmt.Fprintf(&b, "  iifname %q ct zone set %d\n", z.Bridge, z.Zone)
	}
	fmt.Fprintf(&b, "chain %s\n", fwChainFwd)
	for _, j := range s.Jumps {
		if j.Dir == fwEgress {
			fmt.Fprintf(&b, "  iifname %q ip saddr %v jump %s\n", j.Bridge, j.IP, j.Chain)
		} else {
			fmt.Fprintf(&b, "  oifname %q ip daddr %v jump %s\n", j.Bridge, j.IP, j.Chain)
		}
	}
	for _, c := range s.Chains {
		fmt.Fprintf(&b, "chain %s\n", c.Name)
		addr, verdict := "ip daddr", "return"
		if c.Dir == fwIngress {
			addr, verdict = "ip saddr", "accept"
		}
		for _, r := range c.Rules {
			fmt.Fprintf(&b, "  %s\n", strings.TrimSpace(r.text(addr)+" "+verdict))
		}
		b.WriteString("  drop\n")
	}
	return b.String()
}

// fingerprint names the chain that records which spec the table holds.
func (s fwSpec) fingerprint() string {
	sum := sha256.Sum256([]byte(fwVersion + "\n" + s.String()))
	return fwFPPrefix + hex.EncodeToString(sum[:16])
}

// fwEncode queues the table's contents on c (after the caller's table
// replacement).
func fwEncode(c *nftables.Conn, s fwSpec, fp string) error {
	t := c.AddTable(fwTable())
	pre := c.AddChain(&nftables.Chain{
		Name: fwChainPre, Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityRaw,
	})
	accept := nftables.ChainPolicyAccept
	fwd := c.AddChain(&nftables.Chain{
		Name: fwChainFwd, Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter,
		Policy: &accept,
	})
	c.AddChain(&nftables.Chain{Name: fp, Table: t})

	for _, z := range s.Zones {
		c.AddRule(&nftables.Rule{Table: t, Chain: pre, Exprs: fwExprs(
			fwIfname(expr.MetaKeyIIFNAME, z.Bridge),
			[]expr.Any{
				&expr.Immediate{Register: 1, Data: binaryutil.NativeEndian.PutUint16(z.Zone)},
				&expr.Ct{Key: expr.CtKeyZONE, Register: 1, SourceRegister: true},
			},
		)})
	}

	c.AddRule(&nftables.Rule{Table: t, Chain: fwd, Exprs: fwExprs(
		fwCtState(expr.CtStateBitESTABLISHED|expr.CtStateBitRELATED), fwVerdict(expr.VerdictAccept))})
	c.AddRule(&nftables.Rule{Table: t, Chain: fwd, Exprs: fwExprs(
		fwCtState(expr.CtStateBitINVALID), fwVerdict(expr.VerdictDrop))})
	for _, sp := range [][2]uint16{{68, 67}, {67, 68}} {
		c.AddRule(&nftables.Rule{Table: t, Chain: fwd, Exprs: fwExprs(
			fwL4Proto(unix.IPPROTO_UDP),
			fwPortEq(0, sp[0]),
			fwPortEq(2, sp[1]),
			fwVerdict(expr.VerdictAccept),
		)})
	}

	// Port chains exist before the jumps that name them.
	chains := map[string]*nftables.Chain{}
	for _, ch := range s.Chains {
		chains[ch.Name] = c.AddChain(&nftables.Chain{Name: ch.Name, Table: t})
	}
	for _, j := range s.Jumps {
		key, off := expr.MetaKeyIIFNAME, uint32(12)
		if j.Dir == fwIngress {
			key, off = expr.MetaKeyOIFNAME, 16
		}
		c.AddRule(&nftables.Rule{Table: t, Chain: fwd, Exprs: fwExprs(
			fwIfname(key, j.Bridge),
			fwIPv4(),
			fwAddrEq(off, j.IP),
			[]expr.Any{&expr.Verdict{Kind: expr.VerdictJump, Chain: j.Chain}},
		)})
	}
	for _, ch := range s.Chains {
		off, verdict := uint32(16), expr.VerdictReturn
		if ch.Dir == fwIngress {
			off, verdict = 12, expr.VerdictAccept
		}
		for _, r := range ch.Rules {
			ex := fwIPv4()
			if r.Proto != 0 {
				ex = append(ex, fwL4Proto(r.Proto)...)
			}
			switch {
			case r.PortMin == 0 && r.PortMax == 0:
			case r.PortMin == r.PortMax:
				ex = append(ex, fwPortEq(2, r.PortMin)...)
			default:
				ex = append(ex,
					&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
					&expr.Range{Op: expr.CmpOpEq, Register: 1,
						FromData: binaryutil.BigEndian.PutUint16(r.PortMin),
						ToData:   binaryutil.BigEndian.PutUint16(r.PortMax)})
			}
			m, err := fwRemote(c, t, off, r.Remote)
			if err != nil {
				return err
			}
			ex = append(ex, m...)
			ex = append(ex, &expr.Verdict{Kind: verdict})
			c.AddRule(&nftables.Rule{Table: t, Chain: chains[ch.Name], Exprs: ex})
		}
		c.AddRule(&nftables.Rule{Table: t, Chain: chains[ch.Name], Exprs: fwVerdict(expr.VerdictDrop)})
	}
	return nil
}

func fwExprs(parts ...[]expr.Any) []expr.Any {
	var out []expr.Any
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func fwVerdict(k expr.VerdictKind) []expr.Any { return []expr.Any{&expr.Verdict{Kind: k}} }

// fwIfname matches an interface name exactly (NUL-padded to IFNAMSIZ).
func fwIfname(key expr.MetaKey, name string) []expr.Any {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, name)
	return []expr.Any{
		&expr.Meta{Key: key, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: b},
	}
}

// fwIPv4 is the dependency nft adds before an "ip" match in an inet table.
func fwIPv4() []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.NFPROTO_IPV4}},
	}
}

func fwL4Proto(p uint8) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{p}},
	}
}

func fwPortEq(off uint32, port uint16) []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: off, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(port)},
	}
}

func fwAddrEq(off uint32, a netip.Addr) []expr.Any {
	b := a.As4()
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: 4},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: b[:]},
	}
}

func fwCtState(bits uint32) []expr.Any {
	return []expr.Any{
		&expr.Ct{Key: expr.CtKeySTATE, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(bits), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)},
	}
}

// fwRemote matches the address at off (12 source, 16 destination) against
// remote: nothing for any address, a masked compare for one prefix, an
// anonymous interval set for more.
func fwRemote(c *nftables.Conn, t *nftables.Table, off uint32, remote []netip.Prefix) ([]expr.Any, error) {
	load := &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: 4}
	switch len(remote) {
	case 0:
		return nil, nil
	case 1:
		p := remote[0]
		network := p.Addr().As4()
		if p.Bits() == 32 {
			return []expr.Any{load, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: network[:]}}, nil
		}
		mask := binaryutil.BigEndian.PutUint32(^uint32(0) << (32 - p.Bits()))
		return []expr.Any{
			load,
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: mask, Xor: make([]byte, 4)},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: network[:]},
		}, nil
	}
	set := &nftables.Set{Table: t, Anonymous: true, Constant: true, Interval: true, KeyType: nftables.TypeIPAddr}
	if err := c.AddSet(set, fwIntervals(remote)); err != nil {
		return nil, fmt.Errorf("firewall: add set: %w", err)
	}
	return []expr.Any{load, &expr.Lookup{SourceRegister: 1, SetName: set.Name, SetID: set.ID}}, nil
}

// fwIntervals turns disjoint sorted prefixes into interval set elements:
// each range's first address, and the first address after it flagged as an
// interval end (omitted past 255.255.255.255). Adjacent ranges are merged:
// the kernel refuses overlapping intervals.
func fwIntervals(remote []netip.Prefix) []nftables.SetElement {
	type span struct{ lo, hi uint64 } // [lo, hi)
	var spans []span
	for _, p := range remote {
		a := p.Addr().As4()
		lo := uint64(binary.BigEndian.Uint32(a[:]))
		hi := lo + 1<<(32-p.Bits())
		if n := len(spans); n > 0 && spans[n-1].hi >= lo {
			spans[n-1].hi = max(spans[n-1].hi, hi)
			continue
		}
		spans = append(spans, span{lo, hi})
	}
	var els []nftables.SetElement
	for _, s := range spans {
		els = append(els, nftables.SetElement{Key: binaryutil.BigEndian.PutUint32(uint32(s.lo))})
		if s.hi <= 0xffffffff {
			els = append(els, nftables.SetElement{Key: binaryutil.BigEndian.PutUint32(uint32(s.hi)), IntervalEnd: true})
		}
	}
	return els
}
