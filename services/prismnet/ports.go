package prismnet

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/photoncloud/photon/internal/apierr"
	"github.com/photoncloud/photon/internal/auth"
	"github.com/photoncloud/photon/internal/ids"
	"github.com/photoncloud/photon/internal/state"
)

const maxPortSGs = 16

// newMAC returns a random locally administered unicast MAC in OpenStack's
// fa:16:3e prefix.
func newMAC() string {
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("prismnet: crypto/rand failed: " + err.Error())
	}
	return fmt.Sprintf("fa:16:3e:%02x:%02x:%02x", b[0], b[1], b[2])
}

// CreatePort creates a port in a subnet with an address from it: the
// fixed ip asked for, else the lowest free one. The address's IPAM key,
// the MAC's key and the port are created in one transaction, so that no
// address is ever handed out twice, whatever runs concurrently; a replica
// also queues its own requests per subnet so that they do not race each
// other for the same address.
func (s *Service) CreatePort(ctx context.Context, req CreatePortRequest) (Port, error) {
	if err := firstErr(validID("subnet_id", req.SubnetID, true), validText("name", req.Name, maxNameLen),
		validID("device_id", req.DeviceID, false), validText("device_owner", req.DeviceOwner, 64)); err != nil {
		return Port{}, err
	}
	var fixed netip.Addr
	if req.IP != "" {
		var err error
		if fixed, err = parseIPv4("ip", req.IP); err != nil {
			return Port{}, err
		}
	}
	if len(req.SecurityGroupIDs) > maxPortSGs {
		return Port{}, apierr.Validation("security_group_ids", apierr.MaxLength, "at most %d security_group_ids", maxPortSGs)
	}
	sgIDs := []string{}
	for _, id := range req.SecurityGroupIDs {
		if err := validID("security_group_ids", id, true); err != nil {
			return Port{}, err
		}
		if !slices.Contains(sgIDs, id) {
			sgIDs = append(sgIDs, id)
		}
	}
	o, err := s.locate(ctx, permPortsCreate, "subnet", req.SubnetID, target("", ""))
	if err != nil {
		return Port{}, err
	}
	sit, err := s.st.subnets.Get(ctx, o.ProjectID+"/"+req.SubnetID)
	if apierr.CodeOf(err) == apierr.CodeNotFound {
		return Port{}, apierr.NotFound("subnet", req.SubnetID)
	}
	if err != nil {
		return Port{}, err
	}
	sn := sit.Value
	p := netip.MustParsePrefix(sn.CIDRBlock)
	first, last := bounds(p)
	gw := netip.MustParseAddr(sn.GatewayIP)
	if fixed.IsValid() {
		if !p.Contains(fixed) || u32(fixed) == first || u32(fixed) == last || fixed == gw {
			return Port{}, &apierr.Error{Code: apierr.CodeValidation,
				Message: "ip " + fixed.String() + " is not a free host address of subnet " + sn.ID + " (" + sn.CIDRBlock + ", gateway " + sn.GatewayIP + ")",
				Details: map[string]any{"field": "ip", "constraint": string(apierr.Range), "cidr_block": sn.CIDRBlock, "gateway_ip": sn.GatewayIP}}
		}
	}
	for _, id := range sgIDs {
		if _, err := s.locate(ctx, permSGsGet, "security group", id, target(o.OrgID, o.ProjectID)); err != nil {
			if apierr.CodeOf(err) == apierr.CodeNotFound {
				return Port{}, &apierr.Error{Code: apierr.CodeNotFound, Message: fmt.Sprintf("security group %q not found in project %s", id, o.ProjectID),
					Details: map[string]any{"kind": "security group", "id": id, "field": "security_group_ids"}}
			}
			return Port{}, err
		}
	}
	unlock, err := s.locks.Lock(ctx, subnetLockPfx+sn.ID, subnetLockPfx+sn.ID)
	if err != nil {
		return Port{}, err
	}
	defer unlock()
	port := Port{ID: ids.New("port"), Name: req.Name, SubnetID: sn.ID, VPCID: sn.VPCID, OrgID: sn.OrgID, ProjectID: sn.ProjectID,
		DeviceID: req.DeviceID, DeviceOwner: req.DeviceOwner, Status: PortDown, CreatedAt: s.now().UTC()}
	for attempt := 0; attempt < maxAttempts; attempt++ {
		var ops []state.Op
		port.SecurityGroupIDs = sgIDs
		if len(sgIDs) == 0 {
			id, dops, err := s.defaultGroup(ctx, sn.OrgID, sn.ProjectID)
			if err != nil {
				return Port{}, err
			}
			port.SecurityGroupIDs, ops = []string{id}, dops
		}
		ip := fixed
		if !ip.IsValid() {
			if ip, err = s.freeIP(ctx, sn.ID, first, last, gw); err != nil {
				return Port{}, err
			}
		}
		port.IP, port.MACAddress = ip.String(), newMAC()
		for _, mk := range []func() (state.Op, error){
			func() (state.Op, error) { return s.st.ipam.CreateOp(sn.ID+"/"+port.IP, ref{ID: port.ID}) },
			func() (state.Op, error) { return s.st.macs.CreateOp(port.MACAddress, ref{ID: port.ID}) },
			func() (state.Op, error) { return s.st.ports.CreateOp(port.ProjectID+"/"+port.ID, port) },
			func() (state.Op, error) {
				return s.st.owners.CreateOp(port.ID, owner{OrgID: port.OrgID, ProjectID: port.ProjectID})
			},
			func() (state.Op, error) { return s.st.subnetPorts.CreateOp(sn.ID+"/"+port.ID, ref{}) },
		} {
			op, err := mk()
			if err != nil {
				return Port{}, err
			}
			ops = append(ops, op)
		}
		// The subnet must still exist (its delete refuses while this
		// index has entries), and so must every group.
		ops = append(ops, s.st.subnets.ExistsOp(sit.ID))
		for _, id := range port.SecurityGroupIDs {
			if !slices.Contains(sgIDs, id) {
				continue // the default group, created in this transaction
			}
			ops = append(ops, s.st.sgs.ExistsOp(port.ProjectID+"/"+id))
		}
		for _, id := range port.SecurityGroupIDs {
			op, err := s.st.sgPorts.CreateOp(id+"/"+port.ID, ref{})
			if err != nil {
				return Port{}, err
			}
			ops = append(ops, op)
		}
		_, err = state.Commit(ctx, s.st.cli, ops...)
		if err == nil {
			if !fixed.IsValid() {
				s.ipHints.set(sn.ID, u32(ip)+1)
			}
			return port, nil
		}
		e := apierr.As(err)
		switch {
		case e.Code == apierr.CodeAlreadyExists && e.Details["kind"] == kindIP && fixed.IsValid():
			return Port{}, &apierr.Error{Code: apierr.CodeAlreadyExists, Message: "ip " + port.IP + " is already in use in subnet " + sn.ID,
				Details: map[string]any{"field": "ip", "ip": port.IP, "subnet_id": sn.ID}}
		case e.Code == apierr.CodeAlreadyExists && (e.Details["kind"] == kindIP || e.Details["kind"] == kindMAC || e.Details["kind"] == kindDefault):
			continue // another replica took the address, or made the default group: again
		case e.Code == apierr.CodeNotFound && e.Details["kind"] == "subnet":
			return Port{}, apierr.NotFound("subnet", sn.ID)
		default:
			return Port{}, err
		}
	}
	return Port{}, apierr.New(apierr.CodeUnavailable, "subnet %s is changing too fast; retry", sn.ID)
}

// freeIP is the lowest address of the subnet (first, last) that is neither
// its network, broadcast or gateway address nor taken; SUBNET_FULL if none.
// It starts from the replica's hint (below it every address was taken when
// last looked) and checks a few addresses one by one; only when those are
// all taken does it read every taken address of the subnet. A hint that is
// stale because another replica freed an address below it costs nothing
// but that address's reuse order: the port's transaction, not the hint,
// guarantees that no address is handed out twice.
func (s *Service) freeIP(ctx context.Context, subnet string, first, last uint32, gw netip.Addr) (netip.Addr, error) {
	if v, ok := s.ipHints.get(subnet); ok {
		for tries := 0; tries < hintProbes && v > first && v < last; tries, v = tries+1, v+1 {
			if v == u32(gw) {
				continue
			}
			resp, err := s.st.cli.Get(ctx, s.st.ipam.Key(subnet+"/"+addr(v).String()), clientv3.WithCountOnly(), clientv3.WithSerializable())
			if err != nil {
				return netip.Addr{}, state.FromEtcd(err)
			}
			if resp.Count == 0 {
				return addr(v), nil
			}
		}
	}
	pfx := s.st.ipam.Key(subnet + "/")
	resp, err := s.st.cli.Get(ctx, pfx, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return netip.Addr{}, state.FromEtcd(err)
	}
	taken := make(map[uint32]bool, len(resp.Kvs)+1)
	taken[u32(gw)] = true
	for _, kv := range resp.Kvs {
		if a, err := netip.ParseAddr(strings.TrimPrefix(string(kv.Key), pfx)); err == nil {
			taken[u32(a)] = true
		}
	}
	for v := first + 1; v < last; v++ {
		if !taken[v] {
			s.ipHints.set(subnet, v)
			return addr(v), nil
		}
	}
	return netip.Addr{}, &apierr.Error{Code: apierr.CodeSubnetFull, Message: "subnet " + subnet + " has no free address left",
		Details: map[string]any{"subnet_id": subnet, "allocated": len(resp.Kvs)}}
}

// port reads the port id after authorizing perm on it.
func (s *Service) port(ctx context.Context, perm, id, org, project string) (state.Item[Port], error) {
	named, err := namedTarget(org, project)
	if err != nil {
		return state.Item[Port]{}, err
	}
	o, err := s.locate(ctx, perm, "port", id, named)
	if err != nil {
		return state.Item[Port]{}, err
	}
	return s.st.ports.Get(ctx, o.ProjectID+"/"+id)
}

// GetPort returns a port.
func (s *Service) GetPort(ctx context.Context, id, org, project string) (Port, error) {
	it, err := s.port(ctx, permPortsGet, id, org, project)
	return it.Value, err
}

// ListPorts lists ports in the scope named, optionally of one subnet.
func (s *Service) ListPorts(ctx context.Context, subnetID, org, project string, limit int, pageToken string) (PortList, error) {
	named, err := namedTarget(org, project)
	if err != nil {
		return PortList{}, err
	}
	if err := validID("subnet_id", subnetID, false); err != nil {
		return PortList{}, err
	}
	t, err := auth.ListTarget(ctx, permPortsList, named)
	if err != nil {
		return PortList{}, err
	}
	items, next, err := listScoped(ctx, s.st.ports, t, limit, pageToken, func(p Port) bool { return subnetID == "" || p.SubnetID == subnetID })
	if err != nil {
		return PortList{}, err
	}
	return PortList{Ports: items, NextPageToken: next}, nil
}

// DeletePort deletes a port, releasing its address and MAC.
func (s *Service) DeletePort(ctx context.Context, id, org, project string) error {
	it, err := s.port(ctx, permPortsDelete, id, org, project)
	if err != nil {
		return err
	}
	p := it.Value
	ops := []state.Op{
		s.st.ports.DeleteOp(it.ID, it.ModRevision),
		s.st.owners.DeleteAnyOp(id),
		s.st.ipam.DeleteAnyOp(p.SubnetID + "/" + p.IP),
		s.st.macs.DeleteAnyOp(p.MACAddress),
		s.st.subnetPorts.DeleteAnyOp(p.SubnetID + "/" + id),
	}
	for _, sg := range p.SecurityGroupIDs {
		ops = append(ops, s.st.sgPorts.DeleteAnyOp(sg+"/"+id))
	}
	if b := p.Binding; b != nil {
		ops = append(ops, s.st.bindings.DeleteAnyOp(b.Host+"/"+b.IfName))
	}
	_, err = state.Commit(ctx, s.st.cli, ops...)
	if c := apierr.CodeOf(err); c == apierr.CodeNotFound || c == apierr.CodeConflict {
		return apierr.NotFound("port", id) // deleted concurrently
	}
	if err == nil {
		if a, perr := netip.ParseAddr(p.IP); perr == nil {
			s.ipHints.lower(p.SubnetID, u32(a))
		}
	}
	return err
}

// hintProbes is how many addresses from the hint freeIP checks one by one
// before it reads the whole subnet.
const hintProbes = 8

// ipHints is, per subnet, the lowest address that may be free as far as
// this replica knows.
type ipHints struct {
	mu sync.Mutex
	m  map[string]uint32
}

func (h *ipHints) get(subnet string) (uint32, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	v, ok := h.m[subnet]
	return v, ok
}

func (h *ipHints) set(subnet string, v uint32) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.m == nil {
		h.m = map[string]uint32{}
	}
	h.m[subnet] = v
}

// lower moves the hint down to a freed address.
func (h *ipHints) lower(subnet string, v uint32) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if cur, ok := h.m[subnet]; ok && v < cur {
		h.m[subnet] = v
	}
}
