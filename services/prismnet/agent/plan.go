package agent

import (
	"net"
	"net/netip"
	"slices"
	"sort"

	"github.com/photoncloud/photon/services/prismnet"
	"github.com/photoncloud/photon/services/prismnet/dataplane"
)

// PlanFor computes what node's kernel should hold from the topology: the
// VPCs with a port bound to node, each with its subnets, the node's ports
// and their security rules, and where the VPC's other ports are. Ports on
// nodes without a registered agent are left out (nowhere to send to). The
// plan is in a stable order, so that the same topology always gives the
// same plan.
func PlanFor(t *prismnet.Topology, node string) *dataplane.Plan {
	selfVTEP, _ := netip.ParseAddr(t.Nodes[node].VTEP)
	byVPC := map[string][]prismnet.Port{}
	for _, p := range t.Ports {
		byVPC[p.VPCID] = append(byVPC[p.VPCID], p)
	}
	plan := &dataplane.Plan{}
	for vpcID, ports := range byVPC {
		vpc, ok := t.VPCs[vpcID]
		if !ok || vpc.VNI == 0 || !hosts(ports, node) {
			continue
		}
		sort.Slice(ports, func(i, j int) bool { return ports[i].ID < ports[j].ID })
		v := dataplane.VPC{ID: vpc.ID, VNI: vpc.VNI}
		for _, s := range t.Subnets {
			if s.VPCID == vpc.ID {
				v.Subnets = append(v.Subnets, subnetOf(s))
			}
		}
		sort.Slice(v.Subnets, func(i, j int) bool { return v.Subnets[i].ID < v.Subnets[j].ID })
		peers := map[netip.Addr]bool{}
		for _, p := range ports {
			if p.Binding == nil {
				continue
			}
			mac, err1 := net.ParseMAC(p.MACAddress)
			ip, err2 := netip.ParseAddr(p.IP)
			if err1 != nil || err2 != nil {
				continue
			}
			if p.Binding.Host == node {
				v.Ports = append(v.Ports, dataplane.Port{ID: p.ID, IfName: p.Binding.IfName, MAC: mac, IP: ip, SubnetID: p.SubnetID,
					Ingress: rulesOf(t, ports, p, prismnet.Ingress), Egress: rulesOf(t, ports, p, prismnet.Egress)})
				continue
			}
			n, ok := t.Nodes[p.Binding.Host]
			vtep, err := netip.ParseAddr(n.VTEP)
			if !ok || err != nil || vtep == selfVTEP {
				continue
			}
			v.Remote = append(v.Remote, dataplane.RemotePort{ID: p.ID, MAC: mac, IP: ip, VTEP: vtep})
			peers[vtep] = true
		}
		for a := range peers {
			v.Peers = append(v.Peers, a)
		}
		slices.SortFunc(v.Peers, func(a, b netip.Addr) int { return a.Compare(b) })
		plan.VPCs = append(plan.VPCs, v)
	}
	sort.Slice(plan.VPCs, func(i, j int) bool { return plan.VPCs[i].VNI < plan.VPCs[j].VNI })
	return plan
}

// hosts reports whether a port of ports is bound to node.
func hosts(ports []prismnet.Port, node string) bool {
	for _, p := range ports {
		if p.Binding != nil && p.Binding.Host == node {
			return true
		}
	}
	return false
}

func subnetOf(s prismnet.Subnet) dataplane.Subnet {
	out := dataplane.Subnet{ID: s.ID, DHCP: s.DHCPEnabled}
	out.CIDR, _ = netip.ParsePrefix(s.CIDRBlock)
	out.Gateway, _ = netip.ParseAddr(s.GatewayIP)
	for _, d := range s.DNSServers {
		if a, err := netip.ParseAddr(d); err == nil {
			out.DNS = append(out.DNS, a)
		}
	}
	return out
}

var anywhere = netip.MustParsePrefix("0.0.0.0/0")

// rulesOf is the union of the direction's rules of p's security groups.
// A rule naming a remote group allows the addresses of that group's
// members in the VPC (vpcPorts); one naming neither a CIDR nor a group
// allows anywhere.
func rulesOf(t *prismnet.Topology, vpcPorts []prismnet.Port, p prismnet.Port, direction string) []dataplane.Rule {
	out := []dataplane.Rule{}
	for _, gid := range p.SecurityGroupIDs {
		g, ok := t.SecurityGroups[gid]
		if !ok {
			continue
		}
		for _, r := range g.Rules {
			if r.Direction != direction {
				continue
			}
			dr := dataplane.Rule{Protocol: r.Protocol}
			if r.PortRangeMin != nil && r.PortRangeMax != nil {
				dr.PortMin, dr.PortMax = uint16(*r.PortRangeMin), uint16(*r.PortRangeMax)
			}
			switch {
			case r.RemoteGroupID != "":
				for _, m := range vpcPorts {
					if a, err := netip.ParseAddr(m.IP); err == nil && slices.Contains(m.SecurityGroupIDs, r.RemoteGroupID) {
						dr.Remote = append(dr.Remote, netip.PrefixFrom(a, 32))
					}
				}
			case r.RemoteCIDR != "":
				if c, err := netip.ParsePrefix(r.RemoteCIDR); err == nil {
					dr.Remote = []netip.Prefix{c}
				}
			default:
				dr.Remote = []netip.Prefix{anywhere}
			}
			out = append(out, dr)
		}
	}
	return out
}
