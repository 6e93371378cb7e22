// Package dhcp is PrismNET's DHCPv4 server: static leases only, so each
// port gets exactly the IP PrismNET allocated and unknown MACs get no
// answer. One server runs in a VPC's router namespace on the interface that
// holds the gateways of all the VPC's subnets; each lease names its own
// gateway, which is also the server identifier and reply source its client
// sees.
package dhcp

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Config says where a Server listens and how long its leases last.
type Config struct {
	NetNS     string        // path of the network namespace to open the socket in ("" = the caller's current one), e.g. /var/run/netns/<name>
	IfName    string        // the interface to serve on (SO_BINDTODEVICE)
	LeaseTime time.Duration // default 1h (option 51; renewal T1 option 58 = 1/2, T2 option 59 = 7/8)
	Logger    *slog.Logger  // optional
}

// DefaultLeaseTime is used when Config.LeaseTime is zero.
const DefaultLeaseTime = time.Hour

// Server answers DHCP on one interface. Its socket was created inside the
// configured namespace and stays there, so Serve needs no namespace
// switching.
type Server struct {
	conn      *net.UDPConn
	ifindex   int
	leaseTime time.Duration
	log       *slog.Logger
	leases    atomic.Pointer[table]
	closed    atomic.Bool
}

// Listen opens UDP port 67 bound to cfg.IfName inside cfg.NetNS. The
// server starts with no leases: call SetLeases before or while serving.
func Listen(cfg Config) (*Server, error) {
	if cfg.IfName == "" {
		return nil, errors.New("dhcp: Config.IfName is required")
	}
	if cfg.LeaseTime < 0 {
		return nil, fmt.Errorf("dhcp: negative lease time %v", cfg.LeaseTime)
	}
	if cfg.LeaseTime == 0 {
		cfg.LeaseTime = DefaultLeaseTime
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	fd, ifindex, err := openInNetNS(cfg.NetNS, cfg.IfName, ServerPort)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "dhcp-"+cfg.IfName)
	pc, err := net.FilePacketConn(f) // dups fd into Go's poller
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("dhcp: %w", err)
	}
	s := &Server{
		conn:      pc.(*net.UDPConn),
		ifindex:   ifindex,
		leaseTime: cfg.LeaseTime,
		log:       cfg.Logger.With("ifname", cfg.IfName),
	}
	s.leases.Store(&table{})
	return s, nil
}

// openInNetNS creates the socket with the calling thread switched into the
// namespace: a socket belongs to the namespace it was created in for its
// whole life. The switch happens on a throw-away locked goroutine; if the
// thread cannot be switched back it is never unlocked, so Go kills it
// rather than let other goroutines run in the wrong namespace.
func openInNetNS(nsPath, ifname string, port int) (fd, ifindex int, err error) {
	if nsPath == "" {
		return openSocket(ifname, port)
	}
	type result struct{ fd, ifindex int }
	done := make(chan error, 1)
	var res result
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			done <- fmt.Errorf("dhcp: open current netns: %w", err)
			return
		}
		defer unix.Close(orig)
		target, err := unix.Open(nsPath, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			done <- fmt.Errorf("dhcp: open netns %s: %w", nsPath, err)
			return
		}
		defer unix.Close(target)
		if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			done <- fmt.Errorf("dhcp: enter netns %s: %w", nsPath, err)
			return
		}
		res.fd, res.ifindex, err = openSocket(ifname, port)
		if rerr := unix.Setns(orig, unix.CLONE_NEWNET); rerr != nil {
			if err == nil {
				unix.Close(res.fd)
			}
			done <- fmt.Errorf("dhcp: restore netns: %w", rerr) // thread stays locked and dies
			return
		}
		runtime.UnlockOSThread()
		done <- err
	}()
	if err := <-done; err != nil {
		return -1, 0, err
	}
	return res.fd, res.ifindex, nil
}

// openSocket makes the server socket (tests also make client ones) in the current thread's namespace.
// SO_BINDTODEVICE keeps requests from other interfaces out and makes
// 255.255.255.255 replies leave through ifname; SO_REUSEADDR lets a
// restarted server bind while the old socket lingers.
func openSocket(ifname string, port int) (int, int, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return -1, 0, fmt.Errorf("dhcp: %w", err)
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.IPPROTO_UDP)
	if err != nil {
		return -1, 0, fmt.Errorf("dhcp: socket: %w", err)
	}
	fail := func(what string, err error) (int, int, error) {
		unix.Close(fd)
		return -1, 0, fmt.Errorf("dhcp: %s: %w", what, err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		return fail("SO_REUSEADDR", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_BROADCAST, 1); err != nil {
		return fail("SO_BROADCAST", err)
	}
	if err := unix.SetsockoptString(fd, unix.SOL_SOCKET, unix.SO_BINDTODEVICE, ifname); err != nil {
		return fail("SO_BINDTODEVICE "+ifname, err)
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Port: port}); err != nil {
		return fail(fmt.Sprintf("bind :%d", port), err)
	}
	return fd, ifi.Index, nil
}

// SetLeases replaces the lease table; requests already being answered use
// the old one. Leases that are not IPv4, whose MAC is not 6 bytes or whose
// IP or gateway lies outside their subnet are skipped with a warning.
func (s *Server) SetLeases(leases []Lease) {
	t := buildTable(leases, s.log)
	s.leases.Store(&t)
}

// buildTable validates leases so the reply logic can trust them.
func buildTable(leases []Lease, log *slog.Logger) table {
	t := make(table, len(leases))
	for _, l := range leases {
		if err := validLease(l); err != nil {
			log.Warn("dhcp: skipping lease", "mac", l.MAC.String(), "ip", l.IP, "err", err)
			continue
		}
		for _, d := range l.DNS {
			if !d.Is4() {
				log.Warn("dhcp: dropping non-IPv4 DNS server", "mac", l.MAC.String(), "dns", d)
			}
		}
		l.DNS = slices.DeleteFunc(slices.Clone(l.DNS), func(a netip.Addr) bool { return !a.Is4() })
		t[[6]byte(l.MAC)] = l
	}
	return t
}

func validLease(l Lease) error {
	switch {
	case len(l.MAC) != 6:
		return fmt.Errorf("MAC has %d bytes", len(l.MAC))
	case !l.IP.Is4() || !l.Gateway.Is4() || !l.Subnet.IsValid() || !l.Subnet.Addr().Is4():
		return errors.New("IP, gateway and subnet must be IPv4")
	case !l.Subnet.Contains(l.IP) || !l.Subnet.Contains(l.Gateway):
		return errors.New("IP and gateway must be inside the subnet")
	}
	return nil
}

// Serve answers requests until Close, then returns nil.
func (s *Server) Serve() error {
	buf := make([]byte, 65536)
	for {
		n, from, err := s.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if s.closed.Load() || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("dhcp: read: %w", err)
		}
		s.handle(buf[:n], from)
	}
}

// handle answers one packet; bad packets are logged at debug level only,
// since anyone on the segment can send them.
func (s *Server) handle(pkt []byte, from netip.AddrPort) {
	req, err := Decode(pkt)
	if err != nil {
		s.log.Debug("dhcp: dropping packet", "from", from, "err", err)
		return
	}
	mac := net.HardwareAddr(req.CHAddr[:6]).String()
	if req.Op != OpRequest {
		return
	}
	switch req.Type() {
	case Release, Decline:
		s.log.Info("dhcp: client gave up its address", "type", req.Type(), "mac", mac, "ciaddr", req.CIAddr)
		return
	}
	r := respond(req, *s.leases.Load(), s.leaseTime)
	if r == nil {
		s.log.Debug("dhcp: no answer", "type", req.Type(), "mac", mac)
		return
	}
	// IP_PKTINFO picks the source address (the lease's gateway, not the
	// interface's primary one) and the outgoing interface.
	oob := unix.PktInfo4(&unix.Inet4Pktinfo{Ifindex: int32(s.ifindex), Spec_dst: r.src.As4()})
	if _, _, err := s.conn.WriteMsgUDPAddrPort(Encode(r.msg), oob, r.dst); err != nil {
		s.log.Warn("dhcp: send failed", "mac", mac, "dst", r.dst, "err", err)
		return
	}
	s.log.Info("dhcp: answered", "type", req.Type(), "reply", r.msg.Type(), "mac", mac, "ip", r.msg.YIAddr, "dst", r.dst)
}

// Close stops Serve and releases the socket.
func (s *Server) Close() error {
	s.closed.Store(true)
	return s.conn.Close()
}
