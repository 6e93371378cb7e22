package dhcp

import (
	"bytes"
	"encoding/hex"
	"errors"
	"net"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

var macA = net.HardwareAddr{0x02, 0xaa, 0, 0, 0, 0x01}

// newRequest builds a client message the way udhcpc does: broadcast
// flag clear, client id option, parameter request list.
func newRequest(typ uint8, mac net.HardwareAddr, opts map[uint8][]byte) *Message {
	m := &Message{
		Op: OpRequest, HType: 1, HLen: 6, XID: 0x1234abcd, Secs: 3,
		CIAddr: netip.IPv4Unspecified(), YIAddr: netip.IPv4Unspecified(),
		SIAddr: netip.IPv4Unspecified(), GIAddr: netip.IPv4Unspecified(),
		Options: map[uint8][]byte{
			OptMessageType: {typ},
			OptClientID:    append([]byte{1}, mac...),
			OptParamList:   {1, 3, 6, 12, 15, 26, 28, 51, 58, 59},
		},
	}
	copy(m.CHAddr[:], mac)
	for k, v := range opts {
		m.Options[k] = v
	}
	return m
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	long := bytes.Repeat([]byte("x"), 600) // split into three option fragments
	m := newRequest(Request, macA, map[uint8][]byte{
		OptRequestedIP: {10, 77, 1, 10},
		OptServerID:    {10, 77, 1, 1},
		OptHostname:    []byte("vm-a"),
		224:            long,
		225:            nil, // zero-length option survives
	})
	b := Encode(m)
	if len(b) < bootpMinPayload {
		t.Fatalf("encoded %d bytes, want at least %d", len(b), bootpMinPayload)
	}
	if b[240] != OptMessageType {
		t.Errorf("first option is %d, want the message type", b[240])
	}
	got, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, m) {
		t.Fatalf("round trip changed the message:\n got %+v\nwant %+v", got, m)
	}
	if got.MAC() != [6]byte(macA) || got.Type() != Request {
		t.Errorf("MAC %x type %d", got.MAC(), got.Type())
	}
}

func TestDecodeMalformed(t *testing.T) {
	valid := Encode(newRequest(Discover, macA, nil))
	end := bytes.IndexByte(valid[240:], OptEnd) + 240
	mutate := func(f func(b []byte) []byte) []byte {
		return f(bytes.Clone(valid))
	}
	tests := []struct {
		name string
		pkt  []byte
	}{
		{"empty", nil},
		{"header only", valid[:236]},
		{"bad op", mutate(func(b []byte) []byte { b[0] = 3; return b })},
		{"htype not ethernet", mutate(func(b []byte) []byte { b[1] = 6; return b })},
		{"hlen not 6", mutate(func(b []byte) []byte { b[2] = 16; return b })},
		{"bad magic cookie", mutate(func(b []byte) []byte { b[239] = 0; return b })},
		{"no end option", valid[:end]},
		{"option without length", append(bytes.Clone(valid[:end]), 12)},
		{"option overruns", append(bytes.Clone(valid[:end]), 12, 5, 'a')},
		{"message type too long", mutate(func(b []byte) []byte {
			return append(append(b[:240], OptMessageType, 2, 1, 1), OptEnd)
		})},
		{"requested ip 3 bytes", mutate(func(b []byte) []byte {
			return append(append(b[:240], OptMessageType, 1, Request, OptRequestedIP, 3, 10, 77, 1), OptEnd)
		})},
		{"router not multiple of 4", mutate(func(b []byte) []byte {
			return append(append(b[:240], OptRouter, 5, 1, 2, 3, 4, 5), OptEnd)
		})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Decode(tt.pkt)
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Decode = %+v, %v; want ErrMalformed", m, err)
			}
		})
	}
	// Padding before the end option and junk after it are accepted.
	ok := append(append(bytes.Clone(valid[:240]), OptPad, OptPad), valid[240:]...)
	ok = append(ok, 1, 2, 3)
	if _, err := Decode(ok); err != nil {
		t.Errorf("padded packet: %v", err)
	}
}

// FuzzDecode checks that Decode never panics on anything a peer on the
// segment can send, and that whatever it accepts survives Encode.
func FuzzDecode(f *testing.F) {
	for _, typ := range []uint8{Discover, Request, Inform, Release} {
		f.Add(Encode(newRequest(typ, macA, map[uint8][]byte{OptRequestedIP: {10, 77, 1, 10}})))
	}
	tbl := buildTable(testLeases(), discard())
	for _, r := range []*reply{
		respond(newRequest(Discover, macA, nil), tbl, DefaultLeaseTime),
		respond(newRequest(Request, macA, map[uint8][]byte{OptRequestedIP: {10, 77, 1, 99}}), tbl, DefaultLeaseTime),
	} {
		f.Add(Encode(r.msg))
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b)
		if err != nil {
			if m != nil || !errors.Is(err, ErrMalformed) {
				t.Fatalf("Decode error %v with message %v", err, m)
			}
			return
		}
		m2, err := Decode(Encode(m))
		if err != nil {
			t.Fatalf("re-decoding an encoded message: %v", err)
		}
		if !reflect.DeepEqual(m, m2) {
			t.Fatalf("round trip changed the message:\n got %+v\nwant %+v", m2, m)
		}
		respond(m, tbl, DefaultLeaseTime) // must not panic either
	})
}

// A DISCOVER captured from busybox udhcpc 1.35 (-x hostname:bbox), also
// committed as a fuzz seed in testdata/fuzz/FuzzDecode.
var busyboxDiscoverHex = "01010600f09a611a000000000000000000000000000000000000000002aa000000010000" +
	strings.Repeat("00", 8+64+128) +
	"638253633501013902024037070103060c0f1c2a0c0462626f783c0c756468637020312e33352e303d070102aa00000001ff" +
	strings.Repeat("00", 14)

func TestDecodeBusyboxDiscover(t *testing.T) {
	b, err := hex.DecodeString(busyboxDiscoverHex)
	if err != nil || len(b) != 300 {
		t.Fatalf("bad test vector: %v, %d bytes", err, len(b))
	}
	m, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if m.Type() != Discover || m.MAC() != [6]byte(macA) || m.XID != 0xf09a611a || !m.CIAddr.IsUnspecified() {
		t.Errorf("type %d mac %x xid %x ciaddr %v", m.Type(), m.MAC(), m.XID, m.CIAddr)
	}
	if string(m.Options[OptHostname]) != "bbox" || string(m.Options[OptMaxSize]) != "\x02\x40" {
		t.Errorf("options %v", m.Options)
	}
	r := respond(m, buildTable(testLeases(), discard()), DefaultLeaseTime)
	if r == nil || r.msg.Type() != Offer || r.msg.YIAddr != netip.MustParseAddr("10.77.1.10") {
		t.Fatalf("reply %+v", r)
	}
}
