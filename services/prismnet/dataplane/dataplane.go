package dataplane

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/photoncloud/photon/services/prismnet/dhcp"
)

// Config is one node's data plane.
type Config struct {
	// NetNS is the path of the node's network namespace, where bridges,
	// VXLAN devices and port devices live ("" = this process's). Tests
	// run several "nodes" on one machine this way.
	NetNS string
	// RouterNSPrefix starts the names of the router namespaces this node
	// creates ("<prefix><vni in hex>"); it must be unique per node on a
	// machine, since named namespaces are machine-wide.
	RouterNSPrefix string
	// VTEP is the node's underlay address, VXLAN's local end.
	VTEP netip.Addr
	// MTU of the VPCs' devices and instances (default MTU): every node of
	// a cloud must use the same.
	MTU int
	Log *slog.Logger
}

// Dataplane programs one node's kernel. Apply may be called any number of
// times: it changes only what differs from the plan, so calling it again
// with the same plan (also from a new process) changes nothing.
type Dataplane struct {
	cfg  Config
	ns   netns.NsHandle
	h    *netlink.Handle
	fw   *firewall
	l2   *guard
	log  *slog.Logger
	mu   sync.Mutex
	dhcp map[uint32]*dhcpServer // by VNI
}

type dhcpServer struct {
	srv  *dhcp.Server
	done chan struct{}
}

// PortState is what Apply found for one port of the plan: ready, or why
// not.
type PortState struct {
	Ready  bool
	Reason string
}

// New opens the node's namespace. It changes nothing yet.
func New(cfg Config) (*Dataplane, error) {
	if !cfg.VTEP.Is4() {
		return nil, errors.New("dataplane: VTEP must be an IPv4 address")
	}
	if cfg.RouterNSPrefix == "" || strings.ContainsAny(cfg.RouterNSPrefix, "/ ") {
		return nil, fmt.Errorf("dataplane: bad router namespace prefix %q", cfg.RouterNSPrefix)
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.MTU == 0 {
		cfg.MTU = MTU
	}
	if cfg.MTU < 576 || cfg.MTU > MaxMTU {
		return nil, fmt.Errorf("dataplane: mtu %d out of 576 … %d", cfg.MTU, MaxMTU)
	}
	path := cfg.NetNS
	if path == "" {
		path = "/proc/self/ns/net"
	}
	ns, err := netns.GetFromPath(path)
	if err != nil {
		return nil, fmt.Errorf("dataplane: opening network namespace %s: %w", path, err)
	}
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		ns.Close()
		return nil, fmt.Errorf("dataplane: netlink in %s: %w", path, err)
	}
	return &Dataplane{cfg: cfg, ns: ns, h: h, fw: newFirewall(ns), l2: newGuard(ns), log: cfg.Log, dhcp: map[uint32]*dhcpServer{}}, nil
}

// Close stops the DHCP servers and releases the namespace; the kernel's
// state stays as it is, for the next agent to find right.
func (d *Dataplane) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	for vni, s := range d.dhcp {
		s.stop()
		delete(d.dhcp, vni)
	}
	d.h.Close()
	return d.ns.Close()
}

// Teardown removes everything the data plane made on this node.
func (d *Dataplane) Teardown() error {
	_, err := d.Apply(&Plan{})
	return err
}

// RouterNS is the name of the VPC's router namespace on this node.
func (d *Dataplane) RouterNS(vni uint32) string {
	return fmt.Sprintf("%s%06x", d.cfg.RouterNSPrefix, vni)
}

// Apply makes the node's kernel match p and reports each port's state.
// It goes on past a VPC that fails, so that one broken VPC does not hold
// the others back, and returns every error joined.
func (d *Dataplane) Apply(p *Plan) (map[string]PortState, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	states := map[string]PortState{}
	var errs []error
	want := map[uint32]bool{}
	for i := range p.VPCs {
		v := &p.VPCs[i]
		want[v.VNI] = true
		if err := d.applyVPC(v, states); err != nil {
			errs = append(errs, fmt.Errorf("vpc %s (vni %d): %w", v.ID, v.VNI, err))
			for _, port := range v.Ports {
				if _, ok := states[port.ID]; !ok {
					states[port.ID] = PortState{Reason: err.Error()}
				}
			}
		}
	}
	errs = append(errs, d.removeStale(want))
	if len(p.VPCs) == 0 {
		// A host with no VPC keeps no table, and br_netfilter is left as
		// the operator had it.
		if err := errors.Join(d.fw.Remove(), d.l2.Remove()); err != nil {
			errs = append(errs, fmt.Errorf("security groups: %w", err))
		}
		return states, errors.Join(errs...)
	}
	_, fwErr := d.fw.Apply(p)
	_, l2Err := d.l2.Apply(p)
	if err := errors.Join(fwErr, l2Err); err != nil {
		errs = append(errs, fmt.Errorf("security groups: %w", err))
		for id, s := range states {
			if s.Ready {
				states[id] = PortState{Reason: "security groups not applied: " + err.Error()}
			}
		}
	}
	return states, errors.Join(errs...)
}

// applyVPC wires one VPC: bridge, VXLAN and its forwarding entries, router,
// DHCP, and the ports' devices.
func (d *Dataplane) applyVPC(v *VPC, states map[string]PortState) error {
	br, err := d.ensureBridge(v.VNI)
	if err != nil {
		return err
	}
	vx, err := d.ensureVXLAN(v.VNI, br)
	if err != nil {
		return err
	}
	if err := d.syncFDB(vx, v); err != nil {
		return fmt.Errorf("vxlan forwarding entries: %w", err)
	}
	fresh, err := d.ensureRouter(v, br)
	if err != nil {
		return fmt.Errorf("router: %w", err)
	}
	if s := d.dhcp[v.VNI]; s != nil && fresh {
		s.stop() // its socket is in the namespace that was replaced
		delete(d.dhcp, v.VNI)
	}
	if err := d.ensureDHCP(v); err != nil {
		return fmt.Errorf("dhcp: %w", err)
	}
	wanted := map[string]bool{}
	for _, port := range v.Ports {
		wanted[port.IfName] = true
		states[port.ID] = d.attach(port, br)
	}
	// Devices on the bridge that are no longer bound ports come off it.
	links, err := d.h.LinkList()
	if err != nil {
		return err
	}
	for _, l := range links {
		a := l.Attrs()
		if a.MasterIndex != br.Attrs().Index || wanted[a.Name] || ReservedIfName(a.Name) {
			continue
		}
		if err := d.h.LinkSetNoMaster(l); err != nil {
			return fmt.Errorf("detaching %s: %w", a.Name, err)
		}
		d.log.Info("prismnet: device detached", "ifname", a.Name, "bridge", br.Attrs().Name)
	}
	return nil
}

func (d *Dataplane) ensureBridge(vni uint32) (netlink.Link, error) {
	name := BridgeName(vni)
	l, err := d.h.LinkByName(name)
	if err == nil && l.Type() != "bridge" {
		if err := d.h.LinkDel(l); err != nil {
			return nil, err
		}
		err = netlink.LinkNotFoundError{}
	}
	if errors.As(err, &netlink.LinkNotFoundError{}) {
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name, MTU: d.cfg.MTU}}
		if err := d.h.LinkAdd(br); err != nil {
			return nil, fmt.Errorf("creating bridge %s: %w", name, err)
		}
		d.log.Info("prismnet: bridge created", "bridge", name)
		if l, err = d.h.LinkByName(name); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, err
	}
	if err := d.setMTU(d.h, l); err != nil {
		return nil, err
	}
	return l, d.up(l)
}

// setMTU gives l the VPCs' MTU if it has another.
func (d *Dataplane) setMTU(h *netlink.Handle, l netlink.Link) error {
	if l.Attrs().MTU == d.cfg.MTU {
		return nil
	}
	return h.LinkSetMTU(l, d.cfg.MTU)
}

func (d *Dataplane) up(l netlink.Link) error {
	if l.Attrs().Flags&net.FlagUp != 0 {
		return nil
	}
	return d.h.LinkSetUp(l)
}

func (d *Dataplane) ensureVXLAN(vni uint32, br netlink.Link) (netlink.Link, error) {
	name := VXLANName(vni)
	l, err := d.h.LinkByName(name)
	if err == nil {
		vx, ok := l.(*netlink.Vxlan)
		if !ok || vx.VxlanId != int(vni) || !vx.SrcAddr.Equal(net.IP(d.cfg.VTEP.AsSlice())) || vx.Port != VXLANPort || vx.Learning {
			if err := d.h.LinkDel(l); err != nil {
				return nil, err
			}
			err = netlink.LinkNotFoundError{}
		}
	}
	if errors.As(err, &netlink.LinkNotFoundError{}) {
		vx := &netlink.Vxlan{LinkAttrs: netlink.LinkAttrs{Name: name, MTU: d.cfg.MTU}, VxlanId: int(vni),
			SrcAddr: net.IP(d.cfg.VTEP.AsSlice()), Port: VXLANPort, Learning: false}
		if err := d.h.LinkAdd(vx); err != nil {
			return nil, fmt.Errorf("creating vxlan %s: %w", name, err)
		}
		d.log.Info("prismnet: vxlan created", "vxlan", name, "vni", vni, "local", d.cfg.VTEP)
		if l, err = d.h.LinkByName(name); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, err
	}
	if err := d.setMTU(d.h, l); err != nil {
		return nil, err
	}
	if err := d.enslave(l, br); err != nil {
		return nil, err
	}
	// The bridge never learns addresses behind VXLAN: remote ports are
	// forwarded by the entries the control plane knows (syncFDB), and the
	// distributed router's MAC, answering on every node, must stay local.
	if l.Attrs().MasterIndex != br.Attrs().Index || l.Attrs().Flags&net.FlagUp == 0 {
		if err := d.h.LinkSetLearning(l, false); err != nil {
			return nil, err
		}
	}
	return l, d.up(l)
}

// enslave puts l on the bridge br (if it is not there yet) and up.
func (d *Dataplane) enslave(l, br netlink.Link) error {
	if l.Attrs().MasterIndex != br.Attrs().Index {
		if err := d.h.LinkSetMaster(l, br); err != nil {
			return fmt.Errorf("attaching %s to %s: %w", l.Attrs().Name, br.Attrs().Name, err)
		}
	}
	return d.up(l)
}

// fdbKey names a forwarding entry: a MAC (all zeros for flooding) and the
// VTEP it goes to.
type fdbKey struct {
	mac  string
	vtep netip.Addr
}

var zeroMAC = net.HardwareAddr{0, 0, 0, 0, 0, 0}

// syncFDB makes the VXLAN device's forwarding entries those of the plan:
// every remote port's MAC to its node, and broadcasts to every peer.
func (d *Dataplane) syncFDB(vx netlink.Link, v *VPC) error {
	want := map[fdbKey]bool{}
	for _, p := range v.Peers {
		want[fdbKey{zeroMAC.String(), p}] = true
	}
	for _, r := range v.Remote {
		want[fdbKey{r.MAC.String(), r.VTEP}] = true
	}
	have, err := d.h.NeighList(vx.Attrs().Index, unix.AF_BRIDGE)
	if err != nil {
		return err
	}
	for _, n := range have {
		ip, ok := netip.AddrFromSlice(n.IP)
		if !ok || n.IP == nil {
			continue // the device's own entries
		}
		k := fdbKey{n.HardwareAddr.String(), ip.Unmap()}
		if want[k] {
			delete(want, k)
			continue
		}
		if err := d.h.NeighDel(&n); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("removing %s → %s: %w", k.mac, k.vtep, err)
		}
	}
	for k := range want {
		mac, _ := net.ParseMAC(k.mac)
		n := &netlink.Neigh{LinkIndex: vx.Attrs().Index, Family: unix.AF_BRIDGE, State: netlink.NUD_PERMANENT,
			Flags: netlink.NTF_SELF, HardwareAddr: mac, IP: net.IP(k.vtep.AsSlice())}
		if err := d.h.NeighAppend(n); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("adding %s → %s: %w", k.mac, k.vtep, err)
		}
	}
	return nil
}

// ensureRouter makes the VPC's router namespace: a veth from the bridge
// holding every subnet's gateway, forwarding between subnets, with a
// permanent neighbor entry for every port of the VPC (so that it never
// needs an ARP reply, which on another node would reach that node's router,
// since all of them share the router's MAC).
func (d *Dataplane) ensureRouter(v *VPC, br netlink.Link) (fresh bool, err error) {
	err = d.router(v, br, &fresh)
	return fresh, err
}

func (d *Dataplane) router(v *VPC, br netlink.Link, fresh *bool) error {
	name := d.RouterNS(v.VNI)
	rns, err := netns.GetFromName(name)
	if err != nil {
		if rns, err = newNamedNS(name); err != nil {
			return fmt.Errorf("creating namespace %s: %w", name, err)
		}
		*fresh = true
		d.log.Info("prismnet: router namespace created", "netns", name)
	}
	defer rns.Close()
	rh, err := netlink.NewHandleAt(rns)
	if err != nil {
		return err
	}
	defer rh.Close()
	gw, err := rh.LinkByName(routerIf)
	if err != nil {
		// (Re)make the veth: its bridge end may linger from a router
		// namespace deleted by hand.
		host := RouterVethName(v.VNI)
		if old, err := d.h.LinkByName(host); err == nil {
			_ = d.h.LinkDel(old)
		}
		peer := fmt.Sprintf("%s%06x", routerTmpPrefix, v.VNI)
		veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: host, MTU: d.cfg.MTU}, PeerName: peer,
			PeerHardwareAddr: RouterMAC(v.VNI)}
		if err := d.h.LinkAdd(veth); err != nil {
			return fmt.Errorf("creating veth %s: %w", host, err)
		}
		pl, err := d.h.LinkByName(peer)
		if err != nil {
			return err
		}
		if err := d.h.LinkSetNsFd(pl, int(rns)); err != nil {
			return err
		}
		if gw, err = rh.LinkByName(peer); err != nil {
			return err
		}
		if err := rh.LinkSetName(gw, routerIf); err != nil {
			return err
		}
		if err := rh.LinkSetMTU(gw, d.cfg.MTU); err != nil {
			return err
		}
		if gw, err = rh.LinkByName(routerIf); err != nil {
			return err
		}
		*fresh = true
	}
	if !bytes.Equal(gw.Attrs().HardwareAddr, RouterMAC(v.VNI)) {
		if err := rh.LinkSetHardwareAddr(gw, RouterMAC(v.VNI)); err != nil {
			return err
		}
	}
	if *fresh {
		for _, kv := range [][2]string{
			{"net/ipv4/ip_forward", "1"},
			{"net/ipv4/conf/all/send_redirects", "0"},
			{"net/ipv4/conf/default/send_redirects", "0"},
			{"net/ipv4/conf/all/rp_filter", "0"},
			{"net/ipv4/conf/default/rp_filter", "0"},
		} {
			if _, err := writeSysctl(rns, kv[0], kv[1]); err != nil {
				return fmt.Errorf("sysctl %s: %w", kv[0], err)
			}
		}
		if lo, err := rh.LinkByName("lo"); err == nil {
			if err := rh.LinkSetUp(lo); err != nil {
				return err
			}
		}
	}
	if err := d.setMTU(rh, gw); err != nil {
		return err
	}
	if err := rh.LinkSetUp(gw); err != nil {
		return err
	}
	hostEnd, err := d.h.LinkByName(RouterVethName(v.VNI))
	if err != nil {
		return err
	}
	if err := d.setMTU(d.h, hostEnd); err != nil {
		return err
	}
	if err := d.enslave(hostEnd, br); err != nil {
		return err
	}
	if err := syncAddrs(rh, gw, v.Subnets); err != nil {
		return fmt.Errorf("gateway addresses: %w", err)
	}
	return syncNeighbors(rh, gw, v)
}

// syncAddrs makes gw's IPv4 addresses the subnets' gateways.
func syncAddrs(rh *netlink.Handle, gw netlink.Link, subnets []Subnet) error {
	want := map[netip.Prefix]bool{}
	for _, s := range subnets {
		want[netip.PrefixFrom(s.Gateway, s.CIDR.Bits())] = true
	}
	have, err := rh.AddrList(gw, unix.AF_INET)
	if err != nil {
		return err
	}
	for _, a := range have {
		ip, _ := netip.AddrFromSlice(a.IP.To4())
		ones, _ := a.Mask.Size()
		p := netip.PrefixFrom(ip, ones)
		if want[p] {
			delete(want, p)
			continue
		}
		if err := rh.AddrDel(gw, &a); err != nil {
			return err
		}
	}
	for p := range want {
		a := &netlink.Addr{IPNet: &net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), 32)}}
		if err := rh.AddrAdd(gw, a); err != nil && !errors.Is(err, unix.EEXIST) {
			return err
		}
	}
	return nil
}

// syncNeighbors makes the router's permanent neighbor entries every port
// of the VPC, local and remote.
func syncNeighbors(rh *netlink.Handle, gw netlink.Link, v *VPC) error {
	want := map[netip.Addr]string{}
	for _, p := range v.Ports {
		want[p.IP] = p.MAC.String()
	}
	for _, r := range v.Remote {
		want[r.IP] = r.MAC.String()
	}
	have, err := rh.NeighList(gw.Attrs().Index, unix.AF_INET)
	if err != nil {
		return err
	}
	for _, n := range have {
		if n.State&netlink.NUD_PERMANENT == 0 {
			continue
		}
		ip, _ := netip.AddrFromSlice(n.IP.To4())
		if mac, ok := want[ip]; ok && mac == n.HardwareAddr.String() {
			delete(want, ip)
			continue
		}
		if err := rh.NeighDel(&n); err != nil && !errors.Is(err, unix.ENOENT) {
			return err
		}
	}
	for ip, m := range want {
		mac, _ := net.ParseMAC(m)
		n := &netlink.Neigh{LinkIndex: gw.Attrs().Index, Family: unix.AF_INET, State: netlink.NUD_PERMANENT,
			IP: net.IP(ip.AsSlice()), HardwareAddr: mac}
		if err := rh.NeighSet(n); err != nil {
			return err
		}
	}
	return nil
}

// ensureDHCP runs the VPC's DHCP server in its router and gives it the
// leases of this node's ports in subnets with DHCP on (a node answers only
// for its own ports: another node's router hears the same broadcast).
func (d *Dataplane) ensureDHCP(v *VPC) error {
	subnets := map[string]Subnet{}
	for _, s := range v.Subnets {
		subnets[s.ID] = s
	}
	var leases []dhcp.Lease
	for _, p := range v.Ports {
		s, ok := subnets[p.SubnetID]
		if !ok || !s.DHCP {
			continue
		}
		leases = append(leases, dhcp.Lease{MAC: p.MAC, IP: p.IP, Subnet: s.CIDR, Gateway: s.Gateway, DNS: s.DNS, MTU: d.cfg.MTU})
	}
	srv := d.dhcp[v.VNI]
	if srv == nil {
		s, err := dhcp.Listen(dhcp.Config{NetNS: NamedNSDir + "/" + d.RouterNS(v.VNI), IfName: routerIf, Logger: d.log})
		if err != nil {
			return err
		}
		srv = &dhcpServer{srv: s, done: make(chan struct{})}
		go func() {
			defer close(srv.done)
			if err := s.Serve(); err != nil {
				d.log.Error("prismnet: dhcp server stopped", "vni", v.VNI, "err", err)
			}
		}()
		d.dhcp[v.VNI] = srv
	}
	srv.srv.SetLeases(leases)
	return nil
}

func (s *dhcpServer) stop() {
	_ = s.srv.Close()
	<-s.done
}

// attach puts a bound port's device on the bridge.
func (d *Dataplane) attach(p Port, br netlink.Link) PortState {
	l, err := d.h.LinkByName(p.IfName)
	if errors.As(err, &netlink.LinkNotFoundError{}) {
		return PortState{Reason: "device " + p.IfName + " not found on this host"}
	}
	if err != nil {
		return PortState{Reason: err.Error()}
	}
	if l.Attrs().MTU != d.cfg.MTU {
		if err := d.h.LinkSetMTU(l, d.cfg.MTU); err != nil {
			return PortState{Reason: "setting mtu of " + p.IfName + ": " + err.Error()}
		}
	}
	if err := d.enslave(l, br); err != nil {
		return PortState{Reason: err.Error()}
	}
	return PortState{Ready: true}
}

// removeStale deletes the devices, router namespaces and DHCP servers of
// VPCs this node no longer hosts.
func (d *Dataplane) removeStale(want map[uint32]bool) error {
	var errs []error
	for vni, s := range d.dhcp {
		if !want[vni] {
			s.stop()
			delete(d.dhcp, vni)
		}
	}
	links, err := d.h.LinkList()
	if err != nil {
		return err
	}
	for _, l := range links {
		name := l.Attrs().Name
		if !ReservedIfName(name) {
			continue
		}
		vni, err := strconv.ParseUint(name[4:], 16, 24)
		if err != nil || want[uint32(vni)] {
			continue
		}
		if err := d.h.LinkDel(l); err != nil && !errors.As(err, &netlink.LinkNotFoundError{}) {
			errs = append(errs, fmt.Errorf("removing %s: %w", name, err))
			continue
		}
		d.log.Info("prismnet: device removed", "ifname", name)
	}
	names, err := namedNSes(d.cfg.RouterNSPrefix)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	for _, name := range names {
		vni, err := strconv.ParseUint(strings.TrimPrefix(name, d.cfg.RouterNSPrefix), 16, 24)
		if err != nil || want[uint32(vni)] {
			continue
		}
		if err := netns.DeleteNamed(name); err != nil {
			errs = append(errs, fmt.Errorf("removing namespace %s: %w", name, err))
			continue
		}
		d.log.Info("prismnet: router namespace removed", "netns", name)
	}
	return errors.Join(errs...)
}
