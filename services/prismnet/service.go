// Package prismnet is PrismNET's control plane: multi-tenant VPCs, subnets,
// ports with IP address management, and security groups, all kept in
// ChainFire under /photon/prismnet/. Programming the kernel from that state
// (bridges, VXLAN, nftables, DHCP) is the data plane's job, not this
// package's.
package prismnet

import (
	"context"
	"encoding/binary"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/photoncloud/photon/internal/apierr"
	"github.com/photoncloud/photon/internal/auth"
	"github.com/photoncloud/photon/internal/auth/policy"
	"github.com/photoncloud/photon/internal/ids"
	"github.com/photoncloud/photon/internal/keylock"
	"github.com/photoncloud/photon/internal/state"
)

// Permissions PrismNET checks: "prismnet.<resource>.<verb>".
const (
	permVPCsCreate    = "prismnet.vpcs.create"
	permVPCsGet       = "prismnet.vpcs.get"
	permVPCsList      = "prismnet.vpcs.list"
	permVPCsDelete    = "prismnet.vpcs.delete"
	permSubnetsCreate = "prismnet.subnets.create"
	permSubnetsGet    = "prismnet.subnets.get"
	permSubnetsList   = "prismnet.subnets.list"
	permSubnetsDelete = "prismnet.subnets.delete"
	permPortsCreate   = "prismnet.ports.create"
	permPortsGet      = "prismnet.ports.get"
	permPortsList     = "prismnet.ports.list"
	permPortsDelete   = "prismnet.ports.delete"
	permSGsCreate     = "prismnet.security_groups.create"
	permSGsGet        = "prismnet.security_groups.get"
	permSGsList       = "prismnet.security_groups.list"
	permSGsUpdate     = "prismnet.security_groups.update"
	permSGsDelete     = "prismnet.security_groups.delete"
)

// Service is PrismNET's domain logic. Every method authorizes the caller in
// ctx (internal/auth) before it reads or changes anything.
type Service struct {
	cfg     Config
	st      *store
	now     func() time.Time
	log     *slog.Logger
	locks   keylock.Set // one replica's changes to a VPC or subnet queue here
	ipHints ipHints     // where each subnet's next free address search starts

	// dataplane reports the node agent's state for /health; nil while
	// no agent runs in this process.
	dataplane atomic.Pointer[func() map[string]string]
}

// SetDataplaneInfo makes /health report info() (the in-process agent's
// state) instead of "dataplane": "disabled".
func (s *Service) SetDataplaneInfo(info func() map[string]string) { s.dataplane.Store(&info) }

// DataplaneInfo is what /health says of the data plane.
func (s *Service) DataplaneInfo() map[string]string {
	if f := s.dataplane.Load(); f != nil {
		return (*f)()
	}
	return map[string]string{"dataplane": "disabled"}
}

// NewService returns PrismNET over cli.
func NewService(cfg Config, cli *clientv3.Client) *Service {
	cfg.Defaults()
	return &Service{cfg: cfg, st: newStore(cli), now: time.Now, log: slog.Default().With("service", "prismnet")}
}

// maxAttempts bounds the compare-and-swap retries of one change.
const maxAttempts = 50

const (
	maxNameLen = 255
	maxTextLen = 1024
)

func validID(field, id string, required bool) error {
	if id == "" && !required {
		return nil
	}
	return ids.Check(field, id)
}

func validName(name string) error {
	if name == "" {
		return apierr.Validation("name", apierr.Required, "name is required")
	}
	return validText("name", name, maxNameLen)
}

func validText(field, s string, max int) error {
	if len(s) > max {
		return apierr.Validation(field, apierr.MaxLength, "%s must be at most %d characters", field, max)
	}
	return nil
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// parseCIDR reads an IPv4 network in canonical form (host bits zero) with
// a prefix length from minBits to maxBits.
func parseCIDR(field, s string, minBits, maxBits int) (netip.Prefix, error) {
	if s == "" {
		return netip.Prefix{}, apierr.Validation(field, apierr.Required, "%s is required", field)
	}
	p, err := netip.ParsePrefix(s)
	if err != nil || !p.Addr().Is4() {
		return netip.Prefix{}, apierr.Validation(field, apierr.Format, "%s %q must be an IPv4 network such as 10.0.0.0/16", field, s)
	}
	if p.Bits() < minBits || p.Bits() > maxBits {
		return netip.Prefix{}, &apierr.Error{Code: apierr.CodeValidation,
			Message: field + " must have a prefix length from /" + strconv.Itoa(minBits) + " to /" + strconv.Itoa(maxBits),
			Details: map[string]any{"field": field, "constraint": string(apierr.Range), "min": minBits, "max": maxBits}}
	}
	if m := p.Masked(); m != p {
		return netip.Prefix{}, &apierr.Error{Code: apierr.CodeValidation,
			Message: field + " " + s + " has host bits set; did you mean " + m.String() + "?",
			Details: map[string]any{"field": field, "constraint": string(apierr.Format), "canonical": m.String()}}
	}
	return p, nil
}

// parseIPv4 reads one IPv4 address.
func parseIPv4(field, s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return netip.Addr{}, apierr.Validation(field, apierr.Format, "%s %q must be an IPv4 address such as 10.0.1.1", field, s)
	}
	return a, nil
}

func u32(a netip.Addr) uint32 { b := a.As4(); return binary.BigEndian.Uint32(b[:]) }

func addr(v uint32) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b)
}

// bounds is a network's first (network) and last (broadcast) address.
func bounds(p netip.Prefix) (uint32, uint32) {
	n := u32(p.Addr())
	return n, n | (1<<(32-p.Bits()) - 1)
}

func target(org, project string) policy.Target { return policy.Target{OrgID: org, ProjectID: project} }

// locate authorizes perm on the resource id of kind: it reads the id's
// owner and answers NOT_FOUND both for an id that does not exist and for
// one outside the caller's scope, or whose owner differs from the org or
// project the request names (named).
func (s *Service) locate(ctx context.Context, perm, kind, id string, named policy.Target) (owner, error) {
	if _, err := auth.Caller(ctx); err != nil {
		return owner{}, err
	}
	if err := validID("id", id, true); err != nil {
		return owner{}, err
	}
	if !strings.HasPrefix(id, idPrefix(kind)+"-") {
		return owner{}, apierr.NotFound(kind, id)
	}
	it, err := s.st.owners.GetLocal(ctx, id)
	if apierr.CodeOf(err) == apierr.CodeNotFound {
		return owner{}, apierr.NotFound(kind, id)
	}
	if err != nil {
		return owner{}, err
	}
	o := it.Value
	if err := auth.RequireOn(ctx, perm, target(o.OrgID, o.ProjectID), kind, id); err != nil {
		return owner{}, err
	}
	if (named.OrgID != "" && named.OrgID != o.OrgID) || (named.ProjectID != "" && named.ProjectID != o.ProjectID) {
		return owner{}, apierr.NotFound(kind, id)
	}
	return o, nil
}

// idPrefix is the id prefix of kind's resources.
func idPrefix(kind string) string {
	switch kind {
	case "vpc":
		return "vpc"
	case "subnet":
		return "subnet"
	case "port":
		return "port"
	case "security group":
		return "sg"
	}
	return kind
}

// namedTarget validates the org_id and project_id a request names (both
// optional).
func namedTarget(org, project string) (policy.Target, error) {
	if err := firstErr(validID("org_id", org, false), validID("project_id", project, false)); err != nil {
		return policy.Target{}, err
	}
	return target(org, project), nil
}

// listScoped is state.ListScoped for the target t.
func listScoped[T state.Owned](ctx context.Context, c *state.Collection[T], t policy.Target, limit int, pageToken string, keep func(T) bool) ([]T, string, error) {
	return state.ListScoped(ctx, c, t.OrgID, t.ProjectID, limit, pageToken, keep)
}
