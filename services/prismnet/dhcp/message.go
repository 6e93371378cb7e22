package dhcp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"
)

// BOOTP operation codes (RFC 2131 section 2).
const (
	OpRequest = 1
	OpReply   = 2
)

// DHCP message types (option 53, RFC 2132 section 9.6).
const (
	Discover = 1
	Offer    = 2
	Request  = 3
	Decline  = 4
	Ack      = 5
	Nak      = 6
	Release  = 7
	Inform   = 8
)

// Option codes this package reads or writes (RFC 2132).
const (
	OptPad          = 0
	OptSubnetMask   = 1
	OptRouter       = 3
	OptDNS          = 6
	OptHostname     = 12
	OptMTU          = 26
	OptBroadcast    = 28
	OptRequestedIP  = 50
	OptLeaseTime    = 51
	OptOverload     = 52
	OptMessageType  = 53
	OptServerID     = 54
	OptParamList    = 55
	OptMessage      = 56
	OptMaxSize      = 57
	OptRenewalT1    = 58
	OptRebindingT2  = 59
	OptClientID     = 61
	OptEnd          = 255
	headerLen       = 236
	minPacketLen    = headerLen + 4 + 1 // header, magic cookie, at least the end option
	bootpMinPayload = 300               // the BOOTP minimum some old clients insist on
)

var magicCookie = [4]byte{99, 130, 83, 99}

// ErrMalformed is wrapped by every error Decode returns, so callers can
// tell a bad packet (drop it) from anything else.
var ErrMalformed = errors.New("dhcp: malformed packet")

// Message is one decoded DHCPv4 packet. Options holds each option's value
// with split occurrences (RFC 3396) concatenated; pad and end never appear.
type Message struct {
	Op     uint8
	HType  uint8
	HLen   uint8
	Hops   uint8
	XID    uint32
	Secs   uint16
	Flags  uint16
	CIAddr netip.Addr
	YIAddr netip.Addr
	SIAddr netip.Addr
	GIAddr netip.Addr
	CHAddr [16]byte
	SName  [64]byte
	File   [128]byte

	Options map[uint8][]byte
}

// flagBroadcast is the client's "I cannot take unicast yet" bit.
const flagBroadcast = 0x8000

// MAC is the client hardware address (Decode guarantees hlen 6).
func (m *Message) MAC() [6]byte {
	var a [6]byte
	copy(a[:], m.CHAddr[:6])
	return a
}

// Type is the DHCP message type, 0 when option 53 is absent (plain BOOTP).
func (m *Message) Type() uint8 {
	if v, ok := m.Options[OptMessageType]; ok && len(v) == 1 {
		return v[0]
	}
	return 0
}

// addrOption returns a 4-byte option as an address.
func (m *Message) addrOption(code uint8) (netip.Addr, bool) {
	v, ok := m.Options[code]
	if !ok || len(v) != 4 {
		return netip.Addr{}, false
	}
	return netip.AddrFrom4([4]byte(v)), true
}

// optionLen says which lengths a known option may have, so the reply logic
// can trust what Decode hands it. Unknown options are only checked for
// framing.
func optionLenOK(code uint8, n int) bool {
	switch code {
	case OptMessageType, OptOverload:
		return n == 1
	case OptSubnetMask, OptBroadcast, OptRequestedIP, OptLeaseTime, OptServerID, OptRenewalT1, OptRebindingT2:
		return n == 4
	case OptMTU, OptMaxSize:
		return n == 2
	case OptRouter, OptDNS:
		return n >= 4 && n%4 == 0
	case OptClientID:
		return n >= 2
	case OptParamList, OptHostname:
		return n >= 1
	}
	return true
}

// Decode parses a DHCPv4 packet strictly: Ethernet hardware type with a
// 6-byte address, the magic cookie, options that fit the buffer and end
// with the end option, and sane lengths for the options we interpret.
// Bytes after the end option (padding) are ignored. Options overloaded into
// sname/file (option 52) are not read: no client we serve sends them.
func Decode(b []byte) (*Message, error) {
	if len(b) < minPacketLen {
		return nil, fmt.Errorf("%w: %d bytes", ErrMalformed, len(b))
	}
	m := &Message{
		Op:     b[0],
		HType:  b[1],
		HLen:   b[2],
		Hops:   b[3],
		XID:    binary.BigEndian.Uint32(b[4:8]),
		Secs:   binary.BigEndian.Uint16(b[8:10]),
		Flags:  binary.BigEndian.Uint16(b[10:12]),
		CIAddr: netip.AddrFrom4([4]byte(b[12:16])),
		YIAddr: netip.AddrFrom4([4]byte(b[16:20])),
		SIAddr: netip.AddrFrom4([4]byte(b[20:24])),
		GIAddr: netip.AddrFrom4([4]byte(b[24:28])),
	}
	if m.Op != OpRequest && m.Op != OpReply {
		return nil, fmt.Errorf("%w: op %d", ErrMalformed, m.Op)
	}
	if m.HType != 1 || m.HLen != 6 {
		return nil, fmt.Errorf("%w: htype %d hlen %d", ErrMalformed, m.HType, m.HLen)
	}
	copy(m.CHAddr[:], b[28:44])
	copy(m.SName[:], b[44:108])
	copy(m.File[:], b[108:236])
	if [4]byte(b[236:240]) != magicCookie {
		return nil, fmt.Errorf("%w: no magic cookie", ErrMalformed)
	}
	m.Options = make(map[uint8][]byte)
	opts := b[240:]
	ended := false
	for i := 0; i < len(opts); {
		code := opts[i]
		if code == OptPad {
			i++
			continue
		}
		if code == OptEnd {
			ended = true
			break
		}
		if i+1 >= len(opts) {
			return nil, fmt.Errorf("%w: option %d has no length", ErrMalformed, code)
		}
		n := int(opts[i+1])
		if i+2+n > len(opts) {
			return nil, fmt.Errorf("%w: option %d overruns the packet", ErrMalformed, code)
		}
		m.Options[code] = append(m.Options[code], opts[i+2:i+2+n]...)
		i += 2 + n
	}
	if !ended {
		return nil, fmt.Errorf("%w: no end option", ErrMalformed)
	}
	for code, v := range m.Options {
		if !optionLenOK(code, len(v)) {
			return nil, fmt.Errorf("%w: option %d has length %d", ErrMalformed, code, len(v))
		}
	}
	return m, nil
}

// Encode serialises m. Options go out in ascending code order except the
// message type, which goes first (some clients look for it there); values
// longer than 255 bytes are split (RFC 3396). The result is padded to the
// 300-byte BOOTP minimum. Codes 0 and 255 in Options are skipped.
func Encode(m *Message) []byte {
	b := make([]byte, headerLen, bootpMinPayload)
	b[0], b[1], b[2], b[3] = m.Op, m.HType, m.HLen, m.Hops
	binary.BigEndian.PutUint32(b[4:8], m.XID)
	binary.BigEndian.PutUint16(b[8:10], m.Secs)
	binary.BigEndian.PutUint16(b[10:12], m.Flags)
	put4 := func(dst []byte, a netip.Addr) {
		if a.Is4() {
			a4 := a.As4()
			copy(dst, a4[:])
		}
	}
	put4(b[12:16], m.CIAddr)
	put4(b[16:20], m.YIAddr)
	put4(b[20:24], m.SIAddr)
	put4(b[24:28], m.GIAddr)
	copy(b[28:44], m.CHAddr[:])
	copy(b[44:108], m.SName[:])
	copy(b[108:236], m.File[:])
	b = append(b, magicCookie[:]...)

	codes := make([]uint8, 0, len(m.Options))
	for c := range m.Options {
		if c != OptPad && c != OptEnd {
			codes = append(codes, c)
		}
	}
	slices.SortFunc(codes, func(x, y uint8) int {
		switch {
		case x == y:
			return 0
		case x == OptMessageType:
			return -1
		case y == OptMessageType:
			return 1
		}
		return int(x) - int(y)
	})
	for _, c := range codes {
		v := m.Options[c]
		for {
			n := min(len(v), 255)
			b = append(b, c, byte(n))
			b = append(b, v[:n]...)
			v = v[n:]
			if len(v) == 0 {
				break
			}
		}
	}
	b = append(b, OptEnd)
	for len(b) < bootpMinPayload {
		b = append(b, 0)
	}
	return b
}
