package prismnet

import (
	"context"
	"strings"

	"github.com/photoncloud/photon/internal/apierr"
	"github.com/photoncloud/photon/internal/auth"
	"github.com/photoncloud/photon/internal/auth/policy"
	"github.com/photoncloud/photon/internal/state"
	"github.com/photoncloud/photon/services/prismnet/dataplane"
)

const (
	permPortsBind   = "prismnet.ports.bind"
	permPortsUnbind = "prismnet.ports.unbind"
	permNodesList   = "prismnet.nodes.list"
)

// maxNodes bounds GET /api/v1/nodes (one page: a cluster, not a fleet).
const maxNodes = 1000

// validHost checks a node name: what hostnames are made of.
func validHost(h string) error {
	if h == "" {
		return apierr.Validation("host", apierr.Required, "host is required")
	}
	if len(h) > 63 {
		return apierr.Validation("host", apierr.MaxLength, "host must be at most 63 characters")
	}
	for i, c := range h {
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || (c != '-' && c != '.' && c != '_')) {
			return apierr.Validation("host", apierr.Format, "host %q must be a host name (letters, digits, '-', '.', '_'; starting with a letter or digit)", h)
		}
	}
	return nil
}

// validIfName checks a Linux interface name (at most 15 bytes, no '/',
// ':' or blanks) that is not one of the data plane's own devices.
func validIfName(n string) error {
	if n == "" {
		return apierr.Validation("ifname", apierr.Required, "ifname is required")
	}
	if len(n) > 15 {
		return apierr.Validation("ifname", apierr.MaxLength, "ifname must be at most 15 characters (Linux's limit)")
	}
	if n == "." || n == ".." || strings.ContainsFunc(n, func(c rune) bool { return c <= ' ' || c > '~' || c == '/' || c == ':' }) {
		return apierr.Validation("ifname", apierr.Format, "ifname %q is not a Linux interface name", n)
	}
	if dataplane.ReservedIfName(n) {
		return apierr.Validation("ifname", apierr.Format, "ifname %q uses a prefix reserved for PrismNET's own devices", n)
	}
	return nil
}

func validBinding(req BindPortRequest) error {
	if err := validHost(req.Host); err != nil {
		return err
	}
	if req.InterfaceType != IfTap && req.InterfaceType != IfVeth {
		return apierr.Validation("interface_type", apierr.Enum, "interface_type must be %q or %q", IfTap, IfVeth)
	}
	return validIfName(req.IfName)
}

// BindPort records that the port's device is req.IfName on node req.Host;
// that node's agent attaches it to the VPC's bridge, applies its security
// groups and marks it ACTIVE. Binding again the same way changes nothing;
// a port bound elsewhere must be unbound first, and a device serves one
// port.
func (s *Service) BindPort(ctx context.Context, id, org, project string, req BindPortRequest) (Port, error) {
	if err := validBinding(req); err != nil {
		return Port{}, err
	}
	for attempt := 0; attempt < maxAttempts; attempt++ {
		it, err := s.port(ctx, permPortsBind, id, org, project)
		if err != nil {
			return Port{}, err
		}
		p := it.Value
		if b := p.Binding; b != nil {
			if b.Host == req.Host && b.InterfaceType == req.InterfaceType && b.IfName == req.IfName {
				return p, nil
			}
			return Port{}, &apierr.Error{Code: apierr.CodeFailedPrecondition,
				Message: "port " + id + " is bound to " + b.IfName + " on " + b.Host + "; unbind it first",
				Details: map[string]any{"kind": "port", "id": id, "host": b.Host, "ifname": b.IfName}}
		}
		if _, err := s.st.nodes.Get(ctx, req.Host); apierr.CodeOf(err) == apierr.CodeNotFound {
			return Port{}, &apierr.Error{Code: apierr.CodeFailedPrecondition,
				Message: "no PrismNET agent runs on host " + req.Host,
				Details: map[string]any{"field": "host", "host": req.Host}}
		} else if err != nil {
			return Port{}, err
		}
		p.Binding = &Binding{Host: req.Host, InterfaceType: req.InterfaceType, IfName: req.IfName, BoundAt: s.now().UTC()}
		p.Status, p.StatusReason = PortBuild, ""
		upd, err := s.st.ports.UpdateOp(it.ID, p, it.ModRevision)
		if err != nil {
			return Port{}, err
		}
		claim, err := s.st.bindings.CreateOp(req.Host+"/"+req.IfName, ref{ID: id})
		if err != nil {
			return Port{}, err
		}
		_, err = state.Commit(ctx, s.st.cli, upd, claim)
		e := apierr.As(err)
		switch {
		case err == nil:
			return p, nil
		case e.Code == apierr.CodeAlreadyExists && e.Details["kind"] == kindBinding:
			return Port{}, &apierr.Error{Code: apierr.CodeAlreadyExists,
				Message: "device " + req.IfName + " on " + req.Host + " is bound to another port",
				Details: map[string]any{"field": "ifname", "host": req.Host, "ifname": req.IfName}}
		case e.Code == apierr.CodeConflict:
			continue // the agent reported a status meanwhile
		case e.Code == apierr.CodeNotFound:
			return Port{}, apierr.NotFound("port", id)
		default:
			return Port{}, err
		}
	}
	return Port{}, apierr.New(apierr.CodeUnavailable, "port %s is changing too fast; retry", id)
}

// UnbindPort detaches the port from its device: the agent takes the
// device off the bridge and drops its rules, and the port is DOWN.
// Unbinding an unbound port changes nothing.
func (s *Service) UnbindPort(ctx context.Context, id, org, project string) (Port, error) {
	for attempt := 0; attempt < maxAttempts; attempt++ {
		it, err := s.port(ctx, permPortsUnbind, id, org, project)
		if err != nil {
			return Port{}, err
		}
		p := it.Value
		if p.Binding == nil {
			return p, nil
		}
		b := *p.Binding
		p.Binding, p.Status, p.StatusReason = nil, PortDown, ""
		upd, err := s.st.ports.UpdateOp(it.ID, p, it.ModRevision)
		if err != nil {
			return Port{}, err
		}
		_, err = state.Commit(ctx, s.st.cli, upd, s.st.bindings.DeleteAnyOp(b.Host+"/"+b.IfName))
		switch apierr.CodeOf(err) {
		case "":
			return p, nil
		case apierr.CodeConflict:
			continue
		case apierr.CodeNotFound:
			return Port{}, apierr.NotFound("port", id)
		default:
			return Port{}, err
		}
	}
	return Port{}, apierr.New(apierr.CodeUnavailable, "port %s is changing too fast; retry", id)
}

// ListNodes lists the nodes whose agents are running (system scope: nodes
// are the operator's, not a project's).
func (s *Service) ListNodes(ctx context.Context) (NodeList, error) {
	if err := auth.Require(ctx, permNodesList, policy.System); err != nil {
		return NodeList{}, err
	}
	page, err := s.st.nodes.List(ctx, "", maxNodes, "")
	if err != nil {
		return NodeList{}, err
	}
	out := NodeList{Nodes: make([]Node, 0, len(page.Items))}
	for _, n := range page.Items {
		out.Nodes = append(out.Nodes, n.Value)
	}
	return out, nil
}
