package policy

import (
	"slices"
	"sort"
	"strings"
	"time"
)

// Subject is who a request acts as: a verified token's claims, or the
// bootstrap admin for a tokenless loopback request in loopback-trust mode.
type Subject struct {
	PrincipalID   string
	PrincipalType string
	Scope         string
	Roles         []string // the roles the token carries
	IssuedBy      string   // who issued the token; == PrincipalID unless delegated
	TokenID       string
	IssuedAt      time.Time
	ExpiresAt     time.Time
	// Bootstrap marks the loopback-trust caller: it is the bootstrap admin
	// without a token, so nothing about it can be revoked or looked up.
	Bootstrap bool
}

// Authority is the principal whose live bindings bound what the subject may
// do: the issuer of a delegated token (so it never outlives or exceeds its
// issuer's rights, as Vault's child tokens), else the subject itself.
func (s *Subject) Authority() string {
	if s.IssuedBy != "" {
		return s.IssuedBy
	}
	return s.PrincipalID
}

// Target is where a resource lives. The zero Target is a system-level
// resource (ChainFire's keys, roles, orgs' listing).
type Target struct {
	OrgID     string
	ProjectID string
}

// System is the target of system-level resources.
var System = Target{}

// Decision is the answer to "may subject do perm on target?".
type Decision int

// The decisions. OutOfScope is distinct from Denied so that a read of a
// resource outside the token's scope answers 404 (existence does not leak)
// while a permission the scope lacks answers 403.
const (
	Allow Decision = iota
	Denied
	OutOfScope
)

func (d Decision) String() string {
	switch d {
	case Allow:
		return "allow"
	case Denied:
		return "denied"
	default:
		return "out_of_scope"
	}
}

// Decide answers whether s may do perm on t, from the cache alone.
func (c *Cache) Decide(s *Subject, perm string, t Target) (Decision, error) {
	if s.Bootstrap {
		return Allow, nil
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	if err := c.readyLocked(); err != nil {
		return Denied, err
	}
	if !c.containsLocked(s.Scope, t) {
		return OutOfScope, nil
	}
	for _, role := range c.effectiveLocked(s) {
		if rules, ok := c.rulesLocked(role); ok && Allows(rules, perm) {
			return Allow, nil
		}
	}
	return Denied, nil
}

// containsLocked: system covers everything; an org covers itself and its
// projects (a project IAM does not know is taken to be in the org the
// request names, as services take unregistered project ids as given); a
// project covers only itself.
func (c *Cache) containsLocked(scope string, t Target) bool {
	if scope == SystemScope {
		return true
	}
	if t == System {
		return false
	}
	if _, isOrg := c.orgs[scope]; isOrg {
		if p, ok := c.projects[t.ProjectID]; ok && t.ProjectID != "" {
			return p.OrgID == scope && (t.OrgID == "" || t.OrgID == scope)
		}
		return t.OrgID == scope
	}
	if t.ProjectID != scope {
		return false
	}
	if p, ok := c.projects[scope]; ok && t.OrgID != "" && t.OrgID != p.OrgID {
		return false
	}
	return true
}

// EffectiveRoles are the roles s may use now: those its token carries that
// its authority could still hand out at the token's scope (holds it, holds
// admin, or holds a built-in role above it). A self-issued token thus
// follows its principal's bindings, a delegated one its issuer's.
func (c *Cache) EffectiveRoles(s *Subject) []string {
	if s.Bootstrap {
		return []string{RoleAdmin}
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.effectiveLocked(s)
}

func (c *Cache) effectiveLocked(s *Subject) []string {
	live := c.liveLocked(s.Authority(), s.Scope)
	var out []string
	for _, r := range s.Roles {
		if coveredBy(live, r) {
			out = append(out, r)
		}
	}
	return out
}

// coveredBy reports whether holding roles lets one hand out role.
func coveredBy(held []string, role string) bool {
	if slices.Contains(held, role) || slices.Contains(held, RoleAdmin) {
		return true
	}
	want, builtin := rank[role]
	if !builtin {
		return false
	}
	for _, h := range held {
		if rank[h] > want {
			return true
		}
	}
	return false
}

// LiveRoles are the roles principal holds at scope through bindings at the
// scope itself, its org (for a project) and the system.
func (c *Cache) LiveRoles(principal, scope string) []string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.liveLocked(principal, scope)
}

func (c *Cache) liveLocked(principal, scope string) []string {
	covering := []string{scope, SystemScope}
	if p, ok := c.projects[scope]; ok {
		covering = append(covering, p.OrgID)
	}
	var out []string
	for _, b := range c.grants[principal] {
		if slices.Contains(covering, b.Scope) && !slices.Contains(out, b.Role) {
			out = append(out, b.Role)
		}
	}
	slices.Sort(out)
	return out
}

// Grantable reports whether s may hand role to someone else: its effective
// roles cover it (see coveredBy).
func (c *Cache) Grantable(s *Subject, role string) bool {
	return coveredBy(c.EffectiveRoles(s), role)
}

// Rules returns the rules of the built-in or custom role name.
func (c *Cache) Rules(name string) ([]string, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.rulesLocked(name)
}

func (c *Cache) rulesLocked(name string) ([]string, bool) {
	if r, ok := builtinRules[name]; ok {
		return r, true
	}
	r, ok := c.roles[name]
	return r.Permissions, ok
}

// Revoked reports whether the token s came from has been revoked, alone or
// with every token of its subject or issuer. Before the cache has loaded it
// cannot know, and says so (UNAVAILABLE) rather than let a token through.
func (c *Cache) Revoked(s *Subject) (bool, error) {
	if s.Bootstrap {
		return false, nil
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	if err := c.readyLocked(); err != nil {
		return false, err
	}
	if _, ok := c.revokedTokens[s.TokenID]; ok {
		return true, nil
	}
	for _, p := range []string{s.PrincipalID, s.IssuedBy} {
		if before, ok := c.revokedPrincipals[p]; ok && !s.IssuedAt.After(before) {
			return true, nil
		}
	}
	return false, nil
}

// Project returns the project IAM knows by id.
func (c *Cache) Project(id string) (Project, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	p, ok := c.projects[id]
	return p, ok
}

// ProjectsOf returns the ids of an org's projects, sorted.
func (c *Cache) ProjectsOf(org string) []string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var out []string
	for id, p := range c.projects {
		if p.OrgID == org {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}

// IsOrg reports whether id is an org IAM knows.
func (c *Cache) IsOrg(id string) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	_, ok := c.orgs[id]
	return ok
}

// Bindings returns the bindings of principal (all of them when principal is
// ""), for IAM's listings.
func (c *Cache) Bindings(principal string) []Binding {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var out []Binding
	for p, bs := range c.grants {
		if principal != "" && p != principal {
			continue
		}
		for _, b := range bs {
			out = append(out, b)
		}
	}
	slices.SortFunc(out, func(a, b Binding) int { return strings.Compare(a.ID, b.ID) })
	return out
}
