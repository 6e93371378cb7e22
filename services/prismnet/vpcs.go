package prismnet

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"strconv"

	"github.com/photoncloud/photon/internal/apierr"
	"github.com/photoncloud/photon/internal/auth"
	"github.com/photoncloud/photon/internal/ids"
	"github.com/photoncloud/photon/internal/state"
)

// VPC prefix lengths: from a /8 down to a /28 (room for a subnet with a
// gateway and hosts).
const (
	minVPCBits = 8
	maxVPCBits = 28
)

// CreateVPC creates a VPC. Two projects may use the same range: VPCs are
// isolated from each other.
func (s *Service) CreateVPC(ctx context.Context, req CreateVPCRequest) (VPC, error) {
	// cidr_block first: the seed's {"name":"invalid"} must name it.
	p, err := parseCIDR("cidr_block", req.CIDRBlock, minVPCBits, maxVPCBits)
	if err != nil {
		return VPC{}, err
	}
	if err := firstErr(validName(req.Name), validID("org_id", req.OrgID, true), validID("project_id", req.ProjectID, true),
		validText("description", req.Description, maxTextLen)); err != nil {
		return VPC{}, err
	}
	if err := auth.Require(ctx, permVPCsCreate, target(req.OrgID, req.ProjectID)); err != nil {
		return VPC{}, err
	}
	v := VPC{ID: ids.New("vpc"), Name: req.Name, OrgID: req.OrgID, ProjectID: req.ProjectID, CIDRBlock: p.String(),
		Description: req.Description, Status: StatusActive, CreatedAt: s.now().UTC()}
	// A random VNI, claimed in the VPC's own transaction: a collision
	// only costs another attempt.
	for attempt := 0; attempt < maxAttempts; attempt++ {
		v.VNI = randomVNI()
		vni, err := s.st.vnis.CreateOp(strconv.FormatUint(uint64(v.VNI), 10), ref{ID: v.ID})
		if err != nil {
			return VPC{}, err
		}
		rec, err := s.st.vpcs.CreateOp(v.ProjectID+"/"+v.ID, vpcRecord{VPC: v})
		if err != nil {
			return VPC{}, err
		}
		own, err := s.st.owners.CreateOp(v.ID, owner{OrgID: v.OrgID, ProjectID: v.ProjectID})
		if err != nil {
			return VPC{}, err
		}
		_, err = state.Commit(ctx, s.st.cli, vni, rec, own)
		if e := apierr.As(err); err != nil && e.Code == apierr.CodeAlreadyExists && e.Details["kind"] == kindVNI {
			continue
		}
		if err != nil {
			return VPC{}, err
		}
		return v, nil
	}
	return VPC{}, apierr.New(apierr.CodeUnavailable, "no free VNI found; retry")
}

// VNIs run from 1 to 65535: VXLAN has 24 bits, but the data plane uses
// the VNI as the VPC's conntrack zone too, and zones have 16 (0 is left
// unused). 65535 VPCs is far more than one cloud of this kind holds.
const maxVNI = 1<<16 - 1

func randomVNI() uint32 {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("prismnet: crypto/rand failed: " + err.Error())
	}
	return binary.BigEndian.Uint32(b[:])%maxVNI + 1
}

// GetVPC returns a VPC; named is the org and project the request names
// (each optional), which must be the VPC's.
func (s *Service) GetVPC(ctx context.Context, id, org, project string) (VPC, error) {
	rec, err := s.vpc(ctx, permVPCsGet, id, org, project)
	if err != nil {
		return VPC{}, err
	}
	return rec.Value.VPC, nil
}

// vpc reads the VPC id after authorizing perm on it.
func (s *Service) vpc(ctx context.Context, perm, id, org, project string) (state.Item[vpcRecord], error) {
	named, err := namedTarget(org, project)
	if err != nil {
		return state.Item[vpcRecord]{}, err
	}
	o, err := s.locate(ctx, perm, "vpc", id, named)
	if err != nil {
		return state.Item[vpcRecord]{}, err
	}
	return s.st.vpcs.Get(ctx, o.ProjectID+"/"+id)
}

// ListVPCs lists the VPCs of the org and project named (or, naming
// neither, of the caller's scope).
func (s *Service) ListVPCs(ctx context.Context, org, project string, limit int, pageToken string) (VPCList, error) {
	named, err := namedTarget(org, project)
	if err != nil {
		return VPCList{}, err
	}
	t, err := auth.ListTarget(ctx, permVPCsList, named)
	if err != nil {
		return VPCList{}, err
	}
	recs, next, err := listScoped(ctx, s.st.vpcs, t, limit, pageToken, nil)
	if err != nil {
		return VPCList{}, err
	}
	out := VPCList{VPCs: make([]VPC, 0, len(recs)), NextPageToken: next}
	for _, r := range recs {
		out.VPCs = append(out.VPCs, r.VPC)
	}
	return out, nil
}

func (r vpcRecord) Owner() (string, string, string) { return r.OrgID, r.ProjectID, r.ID }

// DeleteVPC deletes a VPC that has no subnets left (FAILED_PRECONDITION
// otherwise, checked in the delete's own transaction).
func (s *Service) DeleteVPC(ctx context.Context, id, org, project string) error {
	rec, err := s.vpc(ctx, permVPCsDelete, id, org, project)
	if err != nil {
		return err
	}
	busy := &apierr.Error{Code: apierr.CodeFailedPrecondition, Message: "vpc " + id + " still has subnets; delete them first",
		Details: map[string]any{"kind": "vpc", "id": id}}
	_, err = state.Commit(ctx, s.st.cli,
		state.NoneUnderOp(s.st.vpcSubnets.Key(id+"/"), busy),
		s.st.vpcs.DeleteOp(rec.ID, 0),
		s.st.owners.DeleteOp(id, 0),
		s.st.vnis.DeleteAnyOp(strconv.FormatUint(uint64(rec.Value.VNI), 10)))
	if apierr.CodeOf(err) == apierr.CodeNotFound {
		return apierr.NotFound("vpc", id)
	}
	return err
}
