package plasmavmc

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/photoncloud/photon/internal/apierr"
	"github.com/photoncloud/photon/internal/ids"
)

// A VM's NICs are PrismNET ports, which PlasmaVMC makes through PrismNET's
// REST API as the VM's owner: the request's own credential is passed on,
// so PrismNET's tenancy decides what the owner may use.

type credentialKey struct{}

// WithCredential carries the caller's Authorization header to PrismNET.
func WithCredential(ctx context.Context, authorization string) context.Context {
	return context.WithValue(ctx, credentialKey{}, authorization)
}

func credential(ctx context.Context) string {
	s, _ := ctx.Value(credentialKey{}).(string)
	return s
}

// maxNICs bounds a VM's networks.
const maxNICs = 8

func validNetworks(nets []NetworkRequest) error {
	if len(nets) > maxNICs {
		return apierr.Validation("networks", apierr.MaxLength, "at most %d networks", maxNICs)
	}
	for i, n := range nets {
		field := fmt.Sprintf("networks[%d]", i)
		if n.SubnetID == "" {
			return apierr.Validation(field+".subnet_id", apierr.Required, "%s.subnet_id is required", field)
		}
		if err := ids.Check(field+".subnet_id", n.SubnetID); err != nil {
			return err
		}
		for _, g := range n.SecurityGroupIDs {
			if err := ids.Check(field+".security_group_ids", g); err != nil {
				return err
			}
		}
		if n.IP != "" {
			if a, err := netip.ParseAddr(n.IP); err != nil || !a.Is4() {
				return apierr.Validation(field+".ip", apierr.Format, "%s.ip must be an IPv4 address", field)
			}
		}
	}
	return nil
}

// tapName is the tap of a VM's i-th NIC: unique on the node (the VM id's
// random tail) and within Linux's 15 bytes.
func tapName(vmID string, i int) string {
	tail := vmID
	if len(tail) > 10 {
		tail = tail[len(tail)-10:]
	}
	return fmt.Sprintf("tp%s%d", tail, i)
}

// peer is a client of another PhotonCloud service's REST API (PrismNET's,
// CreditService's): the seed's envelope both ways.
type peer struct {
	base string
	hc   *http.Client
}

func newPeer(base string) *peer {
	return &peer{base: strings.TrimSuffix(base, "/"), hc: &http.Client{Timeout: 10 * time.Second}}
}

// call sends one request with the caller's credential and decodes the
// envelope's data into out; an error envelope comes back as the typed
// error PrismNET answered.
func (p *peer) call(ctx context.Context, method, path string, body, out any) error {
	return p.callKeyed(ctx, method, path, "", body, out)
}

// callKeyed is call with an Idempotency-Key (when not "").
func (p *peer) callKeyed(ctx context.Context, method, path, key string, body, out any) error {
	var rd *bytes.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, err := http.NewRequestWithContext(ctx, method, p.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if c := credential(ctx); c != "" {
		req.Header.Set("Authorization", c)
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := p.hc.Do(req)
	if err != nil {
		return apierr.Wrap(apierr.CodeUnavailable, err, "%s is unreachable", p.base)
	}
	defer resp.Body.Close()
	var env struct {
		Data  json.RawMessage `json:"data"`
		Error *apierr.Error   `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
		return apierr.Wrap(apierr.CodeUnavailable, err, "%s answered %s without an envelope", p.base, resp.Status)
	}
	if env.Error != nil {
		return env.Error
	}
	if out != nil {
		return json.Unmarshal(env.Data, out)
	}
	return nil
}

type pnSubnet struct {
	ID        string `json:"id"`
	ProjectID string `json:"project_id"`
}

type pnPort struct {
	ID  string `json:"id"`
	IP  string `json:"ip"`
	MAC string `json:"mac_address"`
}

// subnet checks that the subnet is the VM's project's: one the caller
// cannot see at all is a bad field (400); one of another project is
// NOT_FOUND, as PrismNET answers for it within the project.
func (p *peer) subnet(ctx context.Context, field, id, project string) error {
	err := p.call(ctx, "GET", "/api/v1/subnets/"+url.PathEscape(id)+"?project_id="+url.QueryEscape(project), nil, &pnSubnet{})
	if apierr.CodeOf(err) != apierr.CodeNotFound {
		return err
	}
	if p.call(ctx, "GET", "/api/v1/subnets/"+url.PathEscape(id), nil, &pnSubnet{}) == nil {
		return apierr.NotFound("subnet", id)
	}
	return &apierr.Error{Code: apierr.CodeValidation, Message: "subnet " + id + " does not exist",
		Details: map[string]any{"field": field, "constraint": "exists", "subnet_id": id}}
}

// createPorts makes a port per network for the VM, undoing those made
// when one fails.
func (s *Service) createPorts(ctx context.Context, vm *VM, nets []NetworkRequest) error {
	if len(nets) == 0 {
		return nil
	}
	if s.prismnet == nil {
		return apierr.Validation("networks", apierr.Format, "this PlasmaVMC has no PrismNET to make NICs with")
	}
	for i, n := range nets {
		field := fmt.Sprintf("networks[%d].subnet_id", i)
		if err := s.prismnet.subnet(ctx, field, n.SubnetID, vm.ProjectID); err != nil {
			s.deletePorts(ctx, vm.NICs)
			return err
		}
		var port pnPort
		body := map[string]any{"subnet_id": n.SubnetID, "device_id": vm.ID, "device_owner": "vm", "name": vm.Name}
		if n.IP != "" {
			body["ip"] = n.IP
		}
		if len(n.SecurityGroupIDs) > 0 {
			body["security_group_ids"] = n.SecurityGroupIDs
		}
		if err := s.prismnet.call(ctx, "POST", "/api/v1/ports", body, &port); err != nil {
			s.deletePorts(ctx, vm.NICs)
			return err
		}
		vm.NICs = append(vm.NICs, NIC{PortID: port.ID, SubnetID: n.SubnetID, IP: port.IP, MAC: port.MAC, Tap: tapName(vm.ID, i)})
	}
	return nil
}

// bindPorts binds the VM's ports to their taps on its node.
func (s *Service) bindPorts(ctx context.Context, vm VM) error {
	for _, n := range vm.NICs {
		body := map[string]any{"host": vm.Node, "interface_type": "tap", "ifname": n.Tap}
		if err := s.prismnet.call(ctx, "POST", "/api/v1/ports/"+url.PathEscape(n.PortID)+"/bind", body, nil); err != nil {
			return err
		}
	}
	return nil
}

// deletePorts deletes the NICs' ports (best effort: a port already gone
// is fine).
func (s *Service) deletePorts(ctx context.Context, nics []NIC) error {
	var first error
	for _, n := range nics {
		err := s.prismnet.call(ctx, "DELETE", "/api/v1/ports/"+url.PathEscape(n.PortID), nil, nil)
		if err != nil && apierr.CodeOf(err) != apierr.CodeNotFound && first == nil {
			first = err
		}
	}
	return first
}
