package prismnet

import (
	"context"
	"net/netip"

	"github.com/photoncloud/photon/internal/apierr"
	"github.com/photoncloud/photon/internal/auth"
	"github.com/photoncloud/photon/internal/ids"
	"github.com/photoncloud/photon/internal/state"
)

// maxSubnetBits is the smallest subnet: a /29 holds a gateway and five
// ports besides its network and broadcast addresses.
const (
	maxSubnetBits = 29
	maxDNSServers = 8
	vpcLockPrefix = "vpc:"
	subnetLockPfx = "subnet:"
)

// CreateSubnet creates a subnet of a VPC: inside the VPC's range and
// overlapping none of its other subnets. The VPC's record is updated in the
// same transaction (a compare-and-swap), so that two concurrent creations
// in one VPC cannot both pass the overlap check.
func (s *Service) CreateSubnet(ctx context.Context, req CreateSubnetRequest) (Subnet, error) {
	if err := firstErr(validName(req.Name), validID("vpc_id", req.VPCID, true)); err != nil {
		return Subnet{}, err
	}
	p, err := parseCIDR("cidr_block", req.CIDRBlock, minVPCBits, maxSubnetBits)
	if err != nil {
		return Subnet{}, err
	}
	first, last := bounds(p)
	gw := addr(first + 1)
	if req.GatewayIP != "" {
		if gw, err = parseIPv4("gateway_ip", req.GatewayIP); err != nil {
			return Subnet{}, err
		}
		if !p.Contains(gw) || u32(gw) == first || u32(gw) == last {
			return Subnet{}, apierr.Validation("gateway_ip", apierr.Range, "gateway_ip %s must be a host address of %s (not its network or broadcast address)", gw, p)
		}
	}
	if len(req.DNSServers) > maxDNSServers {
		return Subnet{}, apierr.Validation("dns_servers", apierr.MaxLength, "at most %d dns_servers", maxDNSServers)
	}
	dns := []string{}
	for _, d := range req.DNSServers {
		a, err := netip.ParseAddr(d)
		if err != nil || a.Zone() != "" {
			return Subnet{}, apierr.Validation("dns_servers", apierr.Format, "dns server %q must be an IP address", d)
		}
		dns = append(dns, a.String())
	}
	if err := validText("description", req.Description, maxTextLen); err != nil {
		return Subnet{}, err
	}
	dhcp := true
	if req.DHCPEnabled != nil {
		dhcp = *req.DHCPEnabled
	}
	// The subnet's org and project are its VPC's.
	o, err := s.locate(ctx, permSubnetsCreate, "vpc", req.VPCID, target("", ""))
	if err != nil {
		return Subnet{}, err
	}
	unlock, err := s.locks.Lock(ctx, vpcLockPrefix+req.VPCID, vpcLockPrefix+req.VPCID)
	if err != nil {
		return Subnet{}, err
	}
	defer unlock()
	sn := Subnet{ID: ids.New("subnet"), Name: req.Name, VPCID: req.VPCID, OrgID: o.OrgID, ProjectID: o.ProjectID,
		CIDRBlock: p.String(), GatewayIP: gw.String(), Description: req.Description, DNSServers: dns, DHCPEnabled: dhcp,
		Status: StatusActive, CreatedAt: s.now().UTC()}
	for attempt := 0; attempt < maxAttempts; attempt++ {
		rec, err := s.st.vpcs.Get(ctx, o.ProjectID+"/"+req.VPCID)
		if apierr.CodeOf(err) == apierr.CodeNotFound {
			return Subnet{}, apierr.NotFound("vpc", req.VPCID)
		}
		if err != nil {
			return Subnet{}, err
		}
		v := rec.Value
		vp := netip.MustParsePrefix(v.CIDRBlock)
		if !vp.Contains(p.Addr()) || p.Bits() < vp.Bits() {
			return Subnet{}, &apierr.Error{Code: apierr.CodeValidation, Message: "cidr_block " + p.String() + " is not inside the vpc's " + v.CIDRBlock,
				Details: map[string]any{"field": "cidr_block", "constraint": string(apierr.Range), "vpc_cidr_block": v.CIDRBlock}}
		}
		for id, c := range v.Subnets {
			if netip.MustParsePrefix(c).Overlaps(p) {
				return Subnet{}, &apierr.Error{Code: apierr.CodeConflict, Message: "cidr_block " + p.String() + " overlaps subnet " + id + " (" + c + ")",
					Details: map[string]any{"field": "cidr_block", "subnet_id": id, "cidr_block": c}}
			}
		}
		next := v
		next.Subnets = map[string]string{sn.ID: sn.CIDRBlock}
		for id, c := range v.Subnets {
			next.Subnets[id] = c
		}
		ops := make([]state.Op, 0, 4)
		for _, mk := range []func() (state.Op, error){
			func() (state.Op, error) { return s.st.vpcs.UpdateOp(rec.ID, next, rec.ModRevision) },
			func() (state.Op, error) { return s.st.subnets.CreateOp(sn.ProjectID+"/"+sn.ID, sn) },
			func() (state.Op, error) { return s.st.owners.CreateOp(sn.ID, o) },
			func() (state.Op, error) { return s.st.vpcSubnets.CreateOp(sn.VPCID+"/"+sn.ID, ref{}) },
		} {
			op, err := mk()
			if err != nil {
				return Subnet{}, err
			}
			ops = append(ops, op)
		}
		_, err = state.Commit(ctx, s.st.cli, ops...)
		switch apierr.CodeOf(err) {
		case "":
			return sn, nil
		case apierr.CodeConflict:
			continue // another replica changed the VPC: read again
		case apierr.CodeNotFound:
			return Subnet{}, apierr.NotFound("vpc", req.VPCID)
		default:
			return Subnet{}, err
		}
	}
	return Subnet{}, apierr.New(apierr.CodeUnavailable, "vpc %s is changing too fast; retry", req.VPCID)
}

// subnet reads the subnet id after authorizing perm on it.
func (s *Service) subnet(ctx context.Context, perm, id, org, project string) (state.Item[Subnet], error) {
	named, err := namedTarget(org, project)
	if err != nil {
		return state.Item[Subnet]{}, err
	}
	o, err := s.locate(ctx, perm, "subnet", id, named)
	if err != nil {
		return state.Item[Subnet]{}, err
	}
	return s.st.subnets.Get(ctx, o.ProjectID+"/"+id)
}

// GetSubnet returns a subnet.
func (s *Service) GetSubnet(ctx context.Context, id, org, project string) (Subnet, error) {
	it, err := s.subnet(ctx, permSubnetsGet, id, org, project)
	return it.Value, err
}

// ListSubnets lists subnets in the scope named, optionally of one VPC.
func (s *Service) ListSubnets(ctx context.Context, vpcID, org, project string, limit int, pageToken string) (SubnetList, error) {
	named, err := namedTarget(org, project)
	if err != nil {
		return SubnetList{}, err
	}
	if err := validID("vpc_id", vpcID, false); err != nil {
		return SubnetList{}, err
	}
	t, err := auth.ListTarget(ctx, permSubnetsList, named)
	if err != nil {
		return SubnetList{}, err
	}
	items, next, err := listScoped(ctx, s.st.subnets, t, limit, pageToken, func(sn Subnet) bool { return vpcID == "" || sn.VPCID == vpcID })
	if err != nil {
		return SubnetList{}, err
	}
	return SubnetList{Subnets: items, NextPageToken: next}, nil
}

// DeleteSubnet deletes a subnet that has no ports left (FAILED_PRECONDITION
// otherwise).
func (s *Service) DeleteSubnet(ctx context.Context, id, vpcID, org, project string) error {
	if err := validID("vpc_id", vpcID, false); err != nil {
		return err
	}
	it, err := s.subnet(ctx, permSubnetsDelete, id, org, project)
	if err != nil {
		return err
	}
	sn := it.Value
	// The seed names the VPC too: a subnet of another VPC is not the one
	// meant, and answers as missing.
	if vpcID != "" && vpcID != sn.VPCID {
		return apierr.NotFound("subnet", id)
	}
	unlock, err := s.locks.Lock(ctx, vpcLockPrefix+sn.VPCID, vpcLockPrefix+sn.VPCID)
	if err != nil {
		return err
	}
	defer unlock()
	busy := &apierr.Error{Code: apierr.CodeFailedPrecondition, Message: "subnet " + id + " still has ports; delete them first",
		Details: map[string]any{"kind": "subnet", "id": id}}
	for attempt := 0; attempt < maxAttempts; attempt++ {
		rec, err := s.st.vpcs.Get(ctx, sn.ProjectID+"/"+sn.VPCID)
		if err != nil {
			return err
		}
		next := rec.Value
		next.Subnets = map[string]string{}
		for k, c := range rec.Value.Subnets {
			if k != id {
				next.Subnets[k] = c
			}
		}
		upd, err := s.st.vpcs.UpdateOp(rec.ID, next, rec.ModRevision)
		if err != nil {
			return err
		}
		_, err = state.Commit(ctx, s.st.cli,
			state.NoneUnderOp(s.st.subnetPorts.Key(id+"/"), busy),
			s.st.subnets.DeleteOp(it.ID, 0),
			s.st.owners.DeleteOp(id, 0),
			s.st.vpcSubnets.DeleteAnyOp(sn.VPCID+"/"+id),
			upd)
		switch apierr.CodeOf(err) {
		case "":
			return nil
		case apierr.CodeConflict:
			continue
		case apierr.CodeNotFound:
			return apierr.NotFound("subnet", id)
		default:
			return err
		}
	}
	return apierr.New(apierr.CodeUnavailable, "vpc %s is changing too fast; retry", sn.VPCID)
}
