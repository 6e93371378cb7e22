package dhcp

import (
	"bytes"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"
)

var (
	macB       = net.HardwareAddr{0x02, 0xaa, 0, 0, 0, 0x02}
	macUnknown = net.HardwareAddr{0x02, 0xaa, 0, 0, 0, 0x99}
)

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

func testLeases() []Lease {
	return []Lease{
		{
			MAC: macA, IP: netip.MustParseAddr("10.77.1.10"), Subnet: netip.MustParsePrefix("10.77.1.0/24"),
			Gateway: netip.MustParseAddr("10.77.1.1"),
			DNS:     []netip.Addr{netip.MustParseAddr("10.77.1.2"), netip.MustParseAddr("10.77.1.3")},
			MTU:     1450, Hostname: "vm-a",
		},
		{
			MAC: macB, IP: netip.MustParseAddr("10.77.2.50"), Subnet: netip.MustParsePrefix("10.77.2.0/24"),
			Gateway: netip.MustParseAddr("10.77.2.1"),
		},
	}
}

func ip4(s string) []byte { return addrBytes(netip.MustParseAddr(s)) }

func TestRespond(t *testing.T) {
	bcast := netip.MustParseAddrPort("255.255.255.255:68")
	withCI := func(m *Message, ci string) *Message { m.CIAddr = netip.MustParseAddr(ci); return m }
	tests := []struct {
		name    string
		req     *Message
		want    uint8 // reply type; 0 = no reply
		yiaddr  string
		dst     netip.AddrPort
		src     string
		opts    map[uint8][]byte // must be present with these values
		without []uint8          // must be absent
	}{
		{
			name: "discover known mac", req: newRequest(Discover, macA, nil),
			want: Offer, yiaddr: "10.77.1.10", dst: bcast, src: "10.77.1.1",
			opts: map[uint8][]byte{
				OptServerID: ip4("10.77.1.1"), OptRouter: ip4("10.77.1.1"),
				OptSubnetMask: ip4("255.255.255.0"), OptBroadcast: ip4("10.77.1.255"),
				OptDNS:       append(ip4("10.77.1.2"), ip4("10.77.1.3")...),
				OptLeaseTime: be32(3600), OptRenewalT1: be32(1800), OptRebindingT2: be32(3150),
				OptMTU: {0x05, 0xaa}, OptHostname: []byte("vm-a"),
			},
		},
		{
			name: "discover second subnet", req: newRequest(Discover, macB, nil),
			want: Offer, yiaddr: "10.77.2.50", dst: bcast, src: "10.77.2.1",
			opts:    map[uint8][]byte{OptServerID: ip4("10.77.2.1"), OptRouter: ip4("10.77.2.1"), OptSubnetMask: ip4("255.255.255.0")},
			without: []uint8{OptDNS, OptMTU, OptHostname},
		},
		{name: "discover unknown mac", req: newRequest(Discover, macUnknown, nil)},
		{
			name: "request selecting right ip", want: Ack, yiaddr: "10.77.1.10", dst: bcast, src: "10.77.1.1",
			req:  newRequest(Request, macA, map[uint8][]byte{OptRequestedIP: ip4("10.77.1.10"), OptServerID: ip4("10.77.1.1")}),
			opts: map[uint8][]byte{OptLeaseTime: be32(3600), OptServerID: ip4("10.77.1.1")},
		},
		{
			name: "request init-reboot right ip", want: Ack, yiaddr: "10.77.2.50", dst: bcast, src: "10.77.2.1",
			req: newRequest(Request, macB, map[uint8][]byte{OptRequestedIP: ip4("10.77.2.50")}),
		},
		{
			name: "request renewing unicasts to ciaddr", want: Ack, yiaddr: "10.77.1.10",
			dst: netip.MustParseAddrPort("10.77.1.10:68"), src: "10.77.1.1",
			req: withCI(newRequest(Request, macA, nil), "10.77.1.10"),
		},
		{
			name: "request wrong ip same subnet", want: Nak, yiaddr: "0.0.0.0", dst: bcast, src: "10.77.1.1",
			req:     newRequest(Request, macA, map[uint8][]byte{OptRequestedIP: ip4("10.77.1.11"), OptServerID: ip4("10.77.1.1")}),
			opts:    map[uint8][]byte{OptServerID: ip4("10.77.1.1")},
			without: []uint8{OptLeaseTime, OptRouter, OptSubnetMask},
		},
		{
			name: "renewing with an address the lease no longer has", want: Nak, yiaddr: "0.0.0.0", dst: bcast, src: "10.77.2.1",
			req: withCI(newRequest(Request, macB, nil), "10.77.1.10"),
		},
		{
			name: "request other server id ignored",
			req:  newRequest(Request, macA, map[uint8][]byte{OptRequestedIP: ip4("10.77.1.10"), OptServerID: ip4("10.77.1.254")}),
		},
		{
			name: "request server id of another of our subnets ignored",
			req:  newRequest(Request, macA, map[uint8][]byte{OptRequestedIP: ip4("10.77.1.10"), OptServerID: ip4("10.77.2.1")}),
		},
		{name: "request naming no address", req: newRequest(Request, macA, nil)},
		{
			name: "request unknown mac",
			req:  newRequest(Request, macUnknown, map[uint8][]byte{OptRequestedIP: ip4("10.77.1.10")}),
		},
		{
			name: "inform", want: Ack, yiaddr: "0.0.0.0",
			dst: netip.MustParseAddrPort("10.77.1.10:68"), src: "10.77.1.1",
			req:     withCI(newRequest(Inform, macA, nil), "10.77.1.10"),
			opts:    map[uint8][]byte{OptRouter: ip4("10.77.1.1"), OptDNS: append(ip4("10.77.1.2"), ip4("10.77.1.3")...)},
			without: []uint8{OptLeaseTime, OptRenewalT1, OptRebindingT2},
		},
		{
			name: "relayed discover goes to the relay", want: Offer, yiaddr: "10.77.1.10",
			dst: netip.MustParseAddrPort("10.77.9.1:67"), src: "10.77.1.1",
			req: func() *Message {
				m := newRequest(Discover, macA, nil)
				m.GIAddr = netip.MustParseAddr("10.77.9.1")
				return m
			}(),
		},
		{name: "release", req: withCI(newRequest(Release, macA, nil), "10.77.1.10")},
		{name: "decline", req: newRequest(Decline, macA, map[uint8][]byte{OptRequestedIP: ip4("10.77.1.10")})},
		{name: "bootreply from a client", req: func() *Message { m := newRequest(Discover, macA, nil); m.Op = OpReply; return m }()},
		{name: "plain bootp", req: func() *Message { m := newRequest(Discover, macA, nil); delete(m.Options, OptMessageType); return m }()},
		{name: "unknown message type", req: newRequest(42, macA, nil)},
	}
	tbl := buildTable(testLeases(), discard())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Go through the wire format, as the server does.
			req, err := Decode(Encode(tt.req))
			if err != nil {
				t.Fatal(err)
			}
			r := respond(req, tbl, time.Hour)
			if tt.want == 0 {
				if r != nil {
					t.Fatalf("got %d reply, want none", r.msg.Type())
				}
				return
			}
			if r == nil {
				t.Fatalf("no reply, want type %d", tt.want)
			}
			// Replies must themselves be valid on the wire.
			m, err := Decode(Encode(r.msg))
			if err != nil {
				t.Fatal(err)
			}
			if m.Type() != tt.want || m.Op != OpReply || m.XID != tt.req.XID || m.MAC() != tt.req.MAC() {
				t.Errorf("type %d op %d xid %x mac %x", m.Type(), m.Op, m.XID, m.MAC())
			}
			if m.YIAddr.String() != tt.yiaddr {
				t.Errorf("yiaddr %v, want %s", m.YIAddr, tt.yiaddr)
			}
			if r.dst != tt.dst || r.src.String() != tt.src {
				t.Errorf("dst %v src %v, want %v %s", r.dst, r.src, tt.dst, tt.src)
			}
			for code, want := range tt.opts {
				if got, ok := m.Options[code]; !ok || !bytes.Equal(got, want) {
					t.Errorf("option %d = %v (present %v), want %v", code, got, ok, want)
				}
			}
			for _, code := range tt.without {
				if v, ok := m.Options[code]; ok {
					t.Errorf("option %d = %v, want absent", code, v)
				}
			}
		})
	}
}

func TestBuildTableSkipsInvalidLeases(t *testing.T) {
	good := testLeases()[0]
	bad := []Lease{
		{MAC: net.HardwareAddr{1, 2, 3}, IP: good.IP, Subnet: good.Subnet, Gateway: good.Gateway},
		{MAC: macB, IP: netip.MustParseAddr("fd00::1"), Subnet: netip.MustParsePrefix("fd00::/64"), Gateway: netip.MustParseAddr("fd00::2")},
		{MAC: macB, IP: netip.MustParseAddr("10.77.3.5"), Subnet: good.Subnet, Gateway: good.Gateway},
		{MAC: macUnknown, IP: good.IP, Gateway: good.Gateway},
	}
	tbl := buildTable(append(bad, good), discard())
	if len(tbl) != 1 {
		t.Fatalf("table has %d leases, want only the valid one: %v", len(tbl), tbl)
	}
	if _, ok := tbl[[6]byte(macA)]; !ok {
		t.Fatal("valid lease missing")
	}
}
