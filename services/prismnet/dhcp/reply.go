package dhcp

import (
	"encoding/binary"
	"net"
	"net/netip"
	"time"
)

// Lease is the one address a known MAC gets, with the settings of its
// subnet. A server serves several subnets at once, so each lease carries
// its own gateway: it is both the router and the server identifier the
// client sees.
type Lease struct {
	MAC      net.HardwareAddr
	IP       netip.Addr
	Subnet   netip.Prefix // the subnet: mask option (1), and broadcast option (28)
	Gateway  netip.Addr   // router option (3) and the server identifier (54) for this lease
	DNS      []netip.Addr // option 6 when non-empty
	MTU      int          // option 26 when > 0
	Hostname string       // optional option 12
}

// table is the lease table keyed by MAC; it is never modified once built,
// so the server can swap it atomically.
type table map[[6]byte]Lease

// Ports of the DHCP protocol.
const (
	ServerPort = 67
	ClientPort = 68
)

// reply is what the server sends for one request: the message, where to
// send it, and the source address it should carry (the lease's gateway).
type reply struct {
	msg *Message
	dst netip.AddrPort
	src netip.Addr
}

// respond is the whole protocol decision, kept pure so it can be tested
// without sockets. It returns nil when the server must stay silent:
// unknown MAC, a request for another server, RELEASE/DECLINE, anything
// that is not a client's DHCP request.
func respond(req *Message, leases table, leaseTime time.Duration) *reply {
	if req == nil || req.Op != OpRequest || req.HType != 1 || req.HLen != 6 {
		return nil
	}
	lease, ok := leases[req.MAC()]
	if !ok {
		return nil
	}
	switch req.Type() {
	case Discover:
		return finish(req, newReply(req, lease, Offer, leaseTime))
	case Request:
		if sid, ok := req.addrOption(OptServerID); ok && sid != lease.Gateway {
			return nil // the client chose another server's offer
		}
		want, ok := req.addrOption(OptRequestedIP)
		if !ok {
			want = req.CIAddr // RENEWING/REBINDING put their address in ciaddr
		}
		if !want.IsValid() || want.IsUnspecified() {
			return nil // a REQUEST naming no address is malformed
		}
		if want != lease.IP {
			// We are authoritative for this MAC: a client asking for any
			// other address (its lease moved, or it remembers one from
			// another network) must restart with DISCOVER.
			return finish(req, nak(req, lease))
		}
		return finish(req, newReply(req, lease, Ack, leaseTime))
	case Inform:
		// RFC 2131 3.4: configuration only; no lease time, no yiaddr.
		r := newReply(req, lease, Ack, 0)
		r.YIAddr = netip.IPv4Unspecified()
		return finish(req, r)
	}
	return nil
}

// newReply builds an OFFER/ACK carrying the lease's settings. leaseTime 0
// leaves out the lease and renewal timers (INFORM).
func newReply(req *Message, l Lease, typ uint8, leaseTime time.Duration) *Message {
	r := header(req, l)
	r.YIAddr = l.IP
	if typ == Offer {
		r.CIAddr = netip.IPv4Unspecified()
	}
	r.Options[OptMessageType] = []byte{typ}
	if leaseTime > 0 {
		secs := uint32(min(leaseTime/time.Second, 0xfffffffe))
		r.Options[OptLeaseTime] = be32(secs)
		r.Options[OptRenewalT1] = be32(secs / 2)
		r.Options[OptRebindingT2] = be32(uint32(uint64(secs) * 7 / 8))
	}
	p := l.Subnet.Masked()
	mask := net.CIDRMask(p.Bits(), 32)
	r.Options[OptSubnetMask] = []byte(mask)
	if p.Bits() <= 30 {
		bc := p.Addr().As4()
		for i := range bc {
			bc[i] |= ^mask[i]
		}
		r.Options[OptBroadcast] = bc[:]
	}
	r.Options[OptRouter] = addrBytes(l.Gateway)
	if len(l.DNS) > 0 {
		var v []byte
		for _, d := range l.DNS {
			v = append(v, addrBytes(d)...)
		}
		r.Options[OptDNS] = v
	}
	if l.MTU > 0 && l.MTU <= 0xffff {
		r.Options[OptMTU] = binary.BigEndian.AppendUint16(nil, uint16(l.MTU))
	}
	if l.Hostname != "" && len(l.Hostname) <= 255 {
		r.Options[OptHostname] = []byte(l.Hostname)
	}
	return r
}

// nak refuses a REQUEST; it carries only the type and our identifier.
func nak(req *Message, l Lease) *Message {
	r := header(req, l)
	r.CIAddr = netip.IPv4Unspecified()
	r.Options[OptMessageType] = []byte{Nak}
	return r
}

// header copies the fields a reply must echo (xid, flags, giaddr, chaddr).
func header(req *Message, l Lease) *Message {
	return &Message{
		Op:      OpReply,
		HType:   1,
		HLen:    6,
		XID:     req.XID,
		Flags:   req.Flags,
		CIAddr:  req.CIAddr,
		YIAddr:  netip.IPv4Unspecified(),
		SIAddr:  netip.IPv4Unspecified(),
		GIAddr:  req.GIAddr,
		CHAddr:  req.CHAddr,
		Options: map[uint8][]byte{OptServerID: addrBytes(l.Gateway)},
	}
}

// finish picks the destination by RFC 2131 4.1, except that a client
// without an address always gets a broadcast: we cannot unicast to an
// address it does not hold yet without writing the ARP cache, and busybox
// udhcpc listens on a raw socket for exactly that broadcast.
func finish(req *Message, m *Message) *reply {
	l := netip.AddrFrom4([4]byte(m.Options[OptServerID]))
	var dst netip.AddrPort
	switch {
	case !req.GIAddr.IsUnspecified():
		dst = netip.AddrPortFrom(req.GIAddr, ServerPort) // via a relay agent
	case m.Type() == Nak || req.CIAddr.IsUnspecified():
		dst = netip.AddrPortFrom(netip.AddrFrom4([4]byte{255, 255, 255, 255}), ClientPort)
	default:
		dst = netip.AddrPortFrom(req.CIAddr, ClientPort)
	}
	return &reply{msg: m, dst: dst, src: l}
}

func be32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

func addrBytes(a netip.Addr) []byte {
	a4 := a.As4()
	return a4[:]
}
