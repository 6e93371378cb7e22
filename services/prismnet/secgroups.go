package prismnet

import (
	"context"
	"net/netip"
	"time"

	"github.com/photoncloud/photon/internal/apierr"
	"github.com/photoncloud/photon/internal/auth"
	"github.com/photoncloud/photon/internal/ids"
	"github.com/photoncloud/photon/internal/state"
)

const (
	defaultGroupName = "default"
	maxRules         = 100
)

// defaultGroup returns the id of project's default security group and the
// transaction steps that keep it: when it does not exist yet, the steps
// create it (all egress allowed, ingress only from members of the group),
// so that it comes into being exactly when the change using it is made.
// A concurrent creator makes the steps fail with ALREADY_EXISTS of
// kindDefault: read again.
func (s *Service) defaultGroup(ctx context.Context, org, project string) (string, []state.Op, error) {
	it, err := s.st.defaults.Get(ctx, project)
	switch apierr.CodeOf(err) {
	case "":
		return it.Value.ID, []state.Op{s.st.sgs.ExistsOp(project + "/" + it.Value.ID)}, nil
	case apierr.CodeNotFound:
	default:
		return "", nil, err
	}
	now := s.now().UTC()
	g := SecurityGroup{ID: ids.New("sg"), Name: defaultGroupName, OrgID: org, ProjectID: project, IsDefault: true,
		Description: "default group: all egress, ingress only from its members", CreatedAt: now, UpdatedAt: now}
	g.Rules = []Rule{
		{ID: ids.New("sgr"), Direction: Egress, Protocol: ProtoAny, RemoteCIDR: "0.0.0.0/0"},
		{ID: ids.New("sgr"), Direction: Ingress, Protocol: ProtoAny, RemoteGroupID: g.ID},
	}
	var ops []state.Op
	for _, mk := range []func() (state.Op, error){
		func() (state.Op, error) { return s.st.defaults.CreateOp(project, ref{ID: g.ID}) },
		func() (state.Op, error) { return s.st.sgs.CreateOp(project+"/"+g.ID, g) },
		func() (state.Op, error) { return s.st.owners.CreateOp(g.ID, owner{OrgID: org, ProjectID: project}) },
	} {
		op, err := mk()
		if err != nil {
			return "", nil, err
		}
		ops = append(ops, op)
	}
	return g.ID, ops, nil
}

// ensureDefault makes project's default group exist.
func (s *Service) ensureDefault(ctx context.Context, org, project string) error {
	for attempt := 0; attempt < maxAttempts; attempt++ {
		_, ops, err := s.defaultGroup(ctx, org, project)
		if err != nil {
			return err
		}
		if len(ops) == 1 {
			return nil // it exists
		}
		_, err = state.Commit(ctx, s.st.cli, ops...)
		if e := apierr.As(err); err != nil && e.Code == apierr.CodeAlreadyExists && e.Details["kind"] == kindDefault {
			continue
		}
		return err
	}
	return apierr.New(apierr.CodeUnavailable, "project %s's default security group is changing too fast; retry", project)
}

// CreateSecurityGroup creates a group with no rules (nothing allowed).
func (s *Service) CreateSecurityGroup(ctx context.Context, req CreateSecurityGroupRequest) (SecurityGroup, error) {
	if err := firstErr(validName(req.Name), validID("org_id", req.OrgID, true), validID("project_id", req.ProjectID, true),
		validText("description", req.Description, maxTextLen)); err != nil {
		return SecurityGroup{}, err
	}
	if req.Name == defaultGroupName {
		return SecurityGroup{}, apierr.Validation("name", apierr.Format, "the name %q is the project's default group's", defaultGroupName)
	}
	if err := auth.Require(ctx, permSGsCreate, target(req.OrgID, req.ProjectID)); err != nil {
		return SecurityGroup{}, err
	}
	if err := s.ensureDefault(ctx, req.OrgID, req.ProjectID); err != nil {
		return SecurityGroup{}, err
	}
	now := s.now().UTC()
	g := SecurityGroup{ID: ids.New("sg"), Name: req.Name, OrgID: req.OrgID, ProjectID: req.ProjectID, Description: req.Description,
		Rules: []Rule{}, CreatedAt: now, UpdatedAt: now}
	rec, err := s.st.sgs.CreateOp(g.ProjectID+"/"+g.ID, g)
	if err != nil {
		return SecurityGroup{}, err
	}
	own, err := s.st.owners.CreateOp(g.ID, owner{OrgID: g.OrgID, ProjectID: g.ProjectID})
	if err != nil {
		return SecurityGroup{}, err
	}
	if _, err := state.Commit(ctx, s.st.cli, rec, own); err != nil {
		return SecurityGroup{}, err
	}
	return g, nil
}

// group reads the group id after authorizing perm on it.
func (s *Service) group(ctx context.Context, perm, id, org, project string) (state.Item[SecurityGroup], error) {
	named, err := namedTarget(org, project)
	if err != nil {
		return state.Item[SecurityGroup]{}, err
	}
	o, err := s.locate(ctx, perm, "security group", id, named)
	if err != nil {
		return state.Item[SecurityGroup]{}, err
	}
	return s.st.sgs.Get(ctx, o.ProjectID+"/"+id)
}

// GetSecurityGroup returns a group with its rules.
func (s *Service) GetSecurityGroup(ctx context.Context, id, org, project string) (SecurityGroup, error) {
	it, err := s.group(ctx, permSGsGet, id, org, project)
	return it.Value, err
}

// ListSecurityGroups lists groups in the scope named. Listing one project's
// groups (org and project both known) first makes its default group exist.
func (s *Service) ListSecurityGroups(ctx context.Context, org, project string, limit int, pageToken string) (SecurityGroupList, error) {
	named, err := namedTarget(org, project)
	if err != nil {
		return SecurityGroupList{}, err
	}
	t, err := auth.ListTarget(ctx, permSGsList, named)
	if err != nil {
		return SecurityGroupList{}, err
	}
	if t.OrgID != "" && t.ProjectID != "" && pageToken == "" && auth.Require(ctx, permSGsCreate, t) == nil {
		if err := s.ensureDefault(ctx, t.OrgID, t.ProjectID); err != nil {
			return SecurityGroupList{}, err
		}
	}
	items, next, err := listScoped(ctx, s.st.sgs, t, limit, pageToken, nil)
	if err != nil {
		return SecurityGroupList{}, err
	}
	return SecurityGroupList{SecurityGroups: items, NextPageToken: next}, nil
}

// DeleteSecurityGroup deletes a group no port uses (FAILED_PRECONDITION
// otherwise). The default group is never deleted.
func (s *Service) DeleteSecurityGroup(ctx context.Context, id, org, project string) error {
	it, err := s.group(ctx, permSGsDelete, id, org, project)
	if err != nil {
		return err
	}
	if it.Value.IsDefault {
		return &apierr.Error{Code: apierr.CodeFailedPrecondition, Message: "a project's default security group cannot be deleted",
			Details: map[string]any{"kind": "security group", "id": id}}
	}
	busy := &apierr.Error{Code: apierr.CodeFailedPrecondition, Message: "security group " + id + " is used by ports; remove it from them first",
		Details: map[string]any{"kind": "security group", "id": id}}
	_, err = state.Commit(ctx, s.st.cli,
		state.NoneUnderOp(s.st.sgPorts.Key(id+"/"), busy),
		s.st.sgs.DeleteOp(it.ID, 0),
		s.st.owners.DeleteOp(id, 0))
	if apierr.CodeOf(err) == apierr.CodeNotFound {
		return apierr.NotFound("security group", id)
	}
	return err
}

// validRule checks a rule: a direction, a protocol, a port range only for
// tcp and udp (1–65535, min ≤ max), and a remote CIDR or group, not both.
func validRule(r CreateRuleRequest) (Rule, error) {
	out := Rule{Direction: r.Direction, Protocol: r.Protocol, PortRangeMin: r.PortRangeMin, PortRangeMax: r.PortRangeMax,
		RemoteGroupID: r.RemoteGroupID, Description: r.Description}
	switch r.Direction {
	case Ingress, Egress:
	case "":
		return Rule{}, apierr.Validation("direction", apierr.Required, "direction is required")
	default:
		return Rule{}, apierr.Validation("direction", apierr.Enum, "direction %q must be ingress or egress", r.Direction)
	}
	switch r.Protocol {
	case ProtoTCP, ProtoUDP:
		if r.PortRangeMin == nil && r.PortRangeMax == nil {
			break
		}
		if r.PortRangeMin == nil || r.PortRangeMax == nil {
			return Rule{}, apierr.Validation("port_range_min", apierr.Required, "port_range_min and port_range_max come together")
		}
		for f, v := range map[string]int{"port_range_min": *r.PortRangeMin, "port_range_max": *r.PortRangeMax} {
			if v < 1 || v > 65535 {
				return Rule{}, &apierr.Error{Code: apierr.CodeValidation, Message: f + " must be from 1 to 65535",
					Details: map[string]any{"field": f, "constraint": string(apierr.Range), "min": 1, "max": 65535}}
			}
		}
		if *r.PortRangeMin > *r.PortRangeMax {
			return Rule{}, apierr.Validation("port_range_min", apierr.Range, "port_range_min %d exceeds port_range_max %d", *r.PortRangeMin, *r.PortRangeMax)
		}
	case ICMP, ProtoAny:
		if r.PortRangeMin != nil || r.PortRangeMax != nil {
			return Rule{}, apierr.Validation("port_range_min", apierr.Format, "port ranges apply only to tcp and udp")
		}
	case "":
		return Rule{}, apierr.Validation("protocol", apierr.Required, "protocol is required")
	default:
		return Rule{}, apierr.Validation("protocol", apierr.Enum, "protocol %q must be tcp, udp, icmp or any", r.Protocol)
	}
	if r.RemoteCIDR != "" && r.RemoteGroupID != "" {
		return Rule{}, apierr.Validation("remote_group_id", apierr.Format, "give remote_cidr or remote_group_id, not both")
	}
	if r.RemoteCIDR != "" {
		p, err := parseCIDR("remote_cidr", r.RemoteCIDR, 0, 32)
		if err != nil {
			return Rule{}, err
		}
		out.RemoteCIDR = p.String()
	}
	if err := firstErr(validID("remote_group_id", r.RemoteGroupID, false), validText("description", r.Description, maxTextLen)); err != nil {
		return Rule{}, err
	}
	if r.RemoteCIDR == "" && r.RemoteGroupID == "" {
		out.RemoteCIDR = netip.PrefixFrom(netip.IPv4Unspecified(), 0).String()
	}
	return out, nil
}

// AddRule adds a rule to a group.
func (s *Service) AddRule(ctx context.Context, id string, req CreateRuleRequest) (Rule, error) {
	r, err := validRule(req)
	if err != nil {
		return Rule{}, err
	}
	o, err := s.locate(ctx, permSGsUpdate, "security group", id, target("", ""))
	if err != nil {
		return Rule{}, err
	}
	var extra []state.Op
	if r.RemoteGroupID != "" {
		if _, err := s.locate(ctx, permSGsGet, "security group", r.RemoteGroupID, target(o.OrgID, o.ProjectID)); err != nil {
			if apierr.CodeOf(err) == apierr.CodeNotFound {
				return Rule{}, &apierr.Error{Code: apierr.CodeNotFound, Message: "remote_group_id " + r.RemoteGroupID + " is not a group of project " + o.ProjectID,
					Details: map[string]any{"kind": "security group", "id": r.RemoteGroupID, "field": "remote_group_id"}}
			}
			return Rule{}, err
		}
		extra = append(extra, s.st.sgs.ExistsOp(o.ProjectID+"/"+r.RemoteGroupID))
	}
	r.ID = ids.New("sgr")
	return r, s.changeGroup(ctx, o.ProjectID+"/"+id, extra, func(g *SecurityGroup) error {
		if len(g.Rules) >= maxRules {
			return apierr.New(apierr.CodeFailedPrecondition, "security group %s already has %d rules", id, maxRules)
		}
		g.Rules = append(g.Rules, r)
		return nil
	})
}

// DeleteRule removes a rule from a group.
func (s *Service) DeleteRule(ctx context.Context, id, ruleID string) error {
	o, err := s.locate(ctx, permSGsUpdate, "security group", id, target("", ""))
	if err != nil {
		return err
	}
	return s.changeGroup(ctx, o.ProjectID+"/"+id, nil, func(g *SecurityGroup) error {
		for i, r := range g.Rules {
			if r.ID == ruleID {
				g.Rules = append(g.Rules[:i:i], g.Rules[i+1:]...)
				return nil
			}
		}
		return apierr.NotFound("security group rule", ruleID)
	})
}

// changeGroup applies fn to the group at key with a compare-and-swap,
// retrying when another writer wins.
func (s *Service) changeGroup(ctx context.Context, key string, extra []state.Op, fn func(*SecurityGroup) error) error {
	for attempt := 0; attempt < maxAttempts; attempt++ {
		it, err := s.st.sgs.Get(ctx, key)
		if err != nil {
			return err
		}
		g := it.Value
		if err := fn(&g); err != nil {
			return err
		}
		g.UpdatedAt = s.now().UTC().Truncate(time.Microsecond)
		op, err := s.st.sgs.UpdateOp(key, g, it.ModRevision)
		if err != nil {
			return err
		}
		_, err = state.Commit(ctx, s.st.cli, append([]state.Op{op}, extra...)...)
		if apierr.CodeOf(err) == apierr.CodeConflict {
			continue
		}
		return err
	}
	return apierr.New(apierr.CodeUnavailable, "security group %s is changing too fast; retry", key)
}
