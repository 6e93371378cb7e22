// The cache is tested from outside the package: testutil starts the whole
// platform, which serves IAM and so imports this package.
package policy_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/photoncloud/photon/internal/apierr"
	"github.com/photoncloud/photon/internal/auth/policy"
	"github.com/photoncloud/photon/internal/testutil"
)

// store starts a ChainFire and returns a client of it.
func store(t *testing.T) (addr string, cli *clientv3.Client) {
	t.Helper()
	srv := testutil.StartChainFire(t)
	return srv.GRPCAddr(), testutil.EtcdClient(t, srv.GRPCAddr())
}

// del deletes key, which must exist.
func del(t *testing.T, cli *clientv3.Client, key string) {
	t.Helper()
	resp, err := cli.Delete(testutil.Context(t), key)
	if err != nil {
		t.Fatalf("delete %s: %v", key, err)
	}
	if resp.Deleted != 1 {
		t.Fatalf("delete %s: deleted %d keys, want 1", key, resp.Deleted)
	}
}

// syncCache waits until c reflects every write made so far.
func syncCache(t *testing.T, c *policy.Cache) {
	t.Helper()
	if err := c.Sync(testutil.Context(t)); err != nil {
		t.Fatalf("sync: %v", err)
	}
}

func org(id string) policy.Org { return policy.Org{ID: id, Name: id} }

func project(id, orgID string) policy.Project {
	return policy.Project{ID: id, Name: id, OrgID: orgID}
}

// bind writes binding id: principal holds role at scope.
func bind(t *testing.T, cli *clientv3.Client, id, principal, role, scope string) int64 {
	t.Helper()
	return testutil.PutJSON(t, cli, policy.BindingsPrefix+id, policy.Binding{ID: id, PrincipalID: principal, Role: role, Scope: scope})
}

const vmOperator = "vm-operator"

// seed writes the world most tests decide in:
//
//	org-a: proj-a1, proj-a2      org-b: proj-b1
//	root   admin  @ system       olga   member @ org-a
//	alice  member @ proj-a1      vera   viewer @ proj-a1
//	carl   vm-operator @ proj-a1 (custom: vms.*, but not delete)
func seed(t *testing.T, cli *clientv3.Client) {
	t.Helper()
	testutil.PutJSON(t, cli, policy.OrgsPrefix+"org-a", org("org-a"))
	testutil.PutJSON(t, cli, policy.OrgsPrefix+"org-b", org("org-b"))
	testutil.PutJSON(t, cli, policy.ProjectsPrefix+"proj-a1", project("proj-a1", "org-a"))
	testutil.PutJSON(t, cli, policy.ProjectsPrefix+"proj-a2", project("proj-a2", "org-a"))
	testutil.PutJSON(t, cli, policy.ProjectsPrefix+"proj-b1", project("proj-b1", "org-b"))
	testutil.PutJSON(t, cli, policy.RolesPrefix+vmOperator, policy.Role{
		Name:        vmOperator,
		Permissions: []string{"plasmavmc.vms.*", "!plasmavmc.vms.delete"},
	})
	bind(t, cli, "b-root", "root", policy.RoleAdmin, policy.SystemScope)
	bind(t, cli, "b-olga", "olga", policy.RoleMember, "org-a")
	bind(t, cli, "b-alice", "alice", policy.RoleMember, "proj-a1")
	bind(t, cli, "b-vera", "vera", policy.RoleViewer, "proj-a1")
	bind(t, cli, "b-carl", "carl", vmOperator, "proj-a1")
}

// tok is a token of principal at scope carrying roles.
func tok(principal, scope string, roles ...string) *policy.Subject {
	return &policy.Subject{
		PrincipalID:   principal,
		PrincipalType: policy.TypeUser,
		Scope:         scope,
		Roles:         roles,
		TokenID:       "jti-" + principal,
		IssuedAt:      time.Unix(1_700_000_000, 0),
		ExpiresAt:     time.Unix(1_700_003_600, 0),
	}
}

// delegated is a token for principal issued by issuer.
func delegated(principal, issuer, scope string, roles ...string) *policy.Subject {
	s := tok(principal, scope, roles...)
	s.IssuedBy = issuer
	return s
}

func in(orgID, projectID string) policy.Target {
	return policy.Target{OrgID: orgID, ProjectID: projectID}
}

var bootstrap = &policy.Subject{PrincipalID: policy.BootstrapAdmin, Scope: policy.SystemScope,
	Roles: []string{policy.RoleAdmin}, Bootstrap: true}

func TestCacheLoadsThenFollows(t *testing.T) {
	_, cli := store(t)
	seed(t, cli)
	// A key outside IAM's records and a record that is not JSON must not
	// stop the load.
	if _, err := cli.Put(testutil.Context(t), policy.ProjectsPrefix+"broken", "{not json"); err != nil {
		t.Fatal(err)
	}
	testutil.PutJSON(t, cli, policy.Prefix+"unknown-kind/x", org("x"))
	testutil.PutJSON(t, cli, policy.SecretsPrefix+"keys/1", map[string]string{"k": "secret"})

	c := testutil.StartPolicyCache(t, cli, nil)

	// Loaded at Start.
	if !c.IsOrg("org-a") || !c.IsOrg("org-b") || c.IsOrg("proj-a1") {
		t.Errorf("IsOrg: org-a=%v org-b=%v proj-a1=%v", c.IsOrg("org-a"), c.IsOrg("org-b"), c.IsOrg("proj-a1"))
	}
	if p, ok := c.Project("proj-a2"); !ok || p.OrgID != "org-a" {
		t.Errorf("Project(proj-a2) = %+v, %v", p, ok)
	}
	if _, ok := c.Project("broken"); ok {
		t.Error("a corrupt project record was loaded")
	}
	if got := c.LiveRoles("alice", "proj-a1"); !slices.Equal(got, []string{policy.RoleMember}) {
		t.Errorf("LiveRoles(alice, proj-a1) = %q", got)
	}
	if rules, ok := c.Rules(vmOperator); !ok || !slices.Equal(rules, []string{"plasmavmc.vms.*", "!plasmavmc.vms.delete"}) {
		t.Errorf("Rules(%s) = %q, %v", vmOperator, rules, ok)
	}
	if rules, ok := c.Rules(policy.RoleViewer); !ok || len(rules) == 0 {
		t.Errorf("Rules(viewer) = %q, %v", rules, ok)
	}
	if _, ok := c.Rules("nope"); ok {
		t.Error(`Rules("nope") found a role`)
	}
	var ids []string
	for _, b := range c.Bindings("") {
		ids = append(ids, b.ID)
	}
	if want := []string{"b-alice", "b-carl", "b-olga", "b-root", "b-vera"}; !slices.Equal(ids, want) {
		t.Errorf("Bindings(\"\") ids = %q, want %q (sorted)", ids, want)
	}
	if got := c.Bindings("alice"); len(got) != 1 || got[0].ID != "b-alice" || got[0].Role != policy.RoleMember {
		t.Errorf("Bindings(alice) = %+v", got)
	}
	startRev := c.Revision()

	// Later puts arrive through the watch.
	testutil.PutJSON(t, cli, policy.OrgsPrefix+"org-c", org("org-c"))
	testutil.PutJSON(t, cli, policy.ProjectsPrefix+"proj-c1", project("proj-c1", "org-c"))
	rev := bind(t, cli, "b-alice-c", "alice", policy.RoleViewer, "org-c")
	syncCache(t, c)
	if c.Revision() < rev || c.Revision() <= startRev {
		t.Errorf("Revision() = %d after a write at %d (start %d)", c.Revision(), rev, startRev)
	}
	if !c.IsOrg("org-c") {
		t.Error("org-c not seen")
	}
	if got := c.LiveRoles("alice", "proj-c1"); !slices.Equal(got, []string{policy.RoleViewer}) {
		t.Errorf("LiveRoles(alice, proj-c1) = %q, want the org binding's viewer", got)
	}

	// A binding rewritten to another principal moves with it.
	bind(t, cli, "b-alice-c", "bob", policy.RoleViewer, "org-c")
	syncCache(t, c)
	if got := c.Bindings("alice"); len(got) != 1 {
		t.Errorf("alice still has %+v after her binding moved to bob", got)
	}
	if got := c.LiveRoles("bob", "proj-c1"); !slices.Equal(got, []string{policy.RoleViewer}) {
		t.Errorf("LiveRoles(bob, proj-c1) = %q", got)
	}

	// Deletes arrive through the watch.
	del(t, cli, policy.BindingsPrefix+"b-alice")
	del(t, cli, policy.OrgsPrefix+"org-c")
	del(t, cli, policy.RolesPrefix+vmOperator)
	syncCache(t, c)
	if got := c.Bindings("alice"); len(got) != 0 {
		t.Errorf("Bindings(alice) = %+v after delete", got)
	}
	if got := c.LiveRoles("alice", "proj-a1"); len(got) != 0 {
		t.Errorf("LiveRoles(alice, proj-a1) = %q after delete", got)
	}
	if c.IsOrg("org-c") {
		t.Error("org-c still an org after delete")
	}
	if _, ok := c.Rules(vmOperator); ok {
		t.Error("custom role still known after delete")
	}

	// A corrupt rewrite of a binding drops it rather than keep stale rights.
	if _, err := cli.Put(testutil.Context(t), policy.BindingsPrefix+"b-vera", "garbage"); err != nil {
		t.Fatal(err)
	}
	syncCache(t, c)
	if got := c.LiveRoles("vera", "proj-a1"); len(got) != 0 {
		t.Errorf("LiveRoles(vera) = %q after her binding became unreadable", got)
	}
}

func TestDecide(t *testing.T) {
	_, cli := store(t)
	seed(t, cli)
	c := testutil.StartPolicyCache(t, cli, nil)

	const (
		create = "plasmavmc.vms.create"
		get    = "plasmavmc.vms.get"
		remove = "plasmavmc.vms.delete"
		mkUser = "iam.users.create"
		kvGet  = "chainfire.kv.get"
	)
	tests := []struct {
		name string
		s    *policy.Subject
		perm string
		t    policy.Target
		want policy.Decision
	}{
		// System-scoped admin: anything, anywhere.
		{"admin system target", tok("root", policy.SystemScope, "admin"), kvGet, policy.System, policy.Allow},
		{"admin other org's project", tok("root", policy.SystemScope, "admin"), mkUser, in("org-b", "proj-b1"), policy.Allow},
		{"admin org target", tok("root", policy.SystemScope, "admin"), mkUser, in("org-a", ""), policy.Allow},
		{"admin unregistered project", tok("root", policy.SystemScope, "admin"), create, in("org-z", "proj-z"), policy.Allow},

		// Project-scoped member.
		{"member own project", tok("alice", "proj-a1", "member"), create, in("org-a", "proj-a1"), policy.Allow},
		{"member own project, org not named", tok("alice", "proj-a1", "member"), create, in("", "proj-a1"), policy.Allow},
		{"member reads iam", tok("alice", "proj-a1", "member"), "iam.users.get", in("org-a", "proj-a1"), policy.Allow},
		{"member sibling project", tok("alice", "proj-a1", "member"), get, in("org-a", "proj-a2"), policy.OutOfScope},
		{"member other org's project", tok("alice", "proj-a1", "member"), get, in("org-b", "proj-b1"), policy.OutOfScope},
		{"member cannot create users", tok("alice", "proj-a1", "member"), mkUser, in("org-a", "proj-a1"), policy.Denied},
		{"member no raw kv", tok("alice", "proj-a1", "member"), kvGet, in("org-a", "proj-a1"), policy.Denied},
		{"member project named under wrong org", tok("alice", "proj-a1", "member"), get, in("org-b", "proj-a1"), policy.OutOfScope},
		{"member org-level target", tok("alice", "proj-a1", "member"), get, in("org-a", ""), policy.OutOfScope},
		{"member system target", tok("alice", "proj-a1", "member"), get, policy.System, policy.OutOfScope},

		// Org-scoped member (binding at org-a).
		{"org member, org's project", tok("olga", "org-a", "member"), create, in("org-a", "proj-a1"), policy.Allow},
		{"org member, org's project, org not named", tok("olga", "org-a", "member"), create, in("", "proj-a2"), policy.Allow},
		{"org member, org itself", tok("olga", "org-a", "member"), get, in("org-a", ""), policy.Allow},
		{"org member, unregistered project named in org", tok("olga", "org-a", "member"), create, in("org-a", "proj-new"), policy.Allow},
		{"org member, other org's project", tok("olga", "org-a", "member"), get, in("org-b", "proj-b1"), policy.OutOfScope},
		{"org member, other org's project, org not named", tok("olga", "org-a", "member"), get, in("", "proj-b1"), policy.OutOfScope},
		{"org member, other org's project named as own", tok("olga", "org-a", "member"), get, in("org-a", "proj-b1"), policy.OutOfScope},
		{"org member, unregistered project, org not named", tok("olga", "org-a", "member"), get, in("", "proj-new"), policy.OutOfScope},
		{"org member, other org", tok("olga", "org-a", "member"), get, in("org-b", ""), policy.OutOfScope},
		{"org member, system target", tok("olga", "org-a", "member"), get, policy.System, policy.OutOfScope},
		// An org binding holds in a project-scoped token for the org's
		// projects, and only there.
		{"org binding in project token", tok("olga", "proj-a2", "member"), create, in("org-a", "proj-a2"), policy.Allow},
		{"org binding not in other org's project token", tok("olga", "proj-b1", "member"), get, in("org-b", "proj-b1"), policy.Denied},

		// Viewer and a custom role.
		{"viewer reads", tok("vera", "proj-a1", "viewer"), get, in("org-a", "proj-a1"), policy.Allow},
		{"viewer cannot create", tok("vera", "proj-a1", "viewer"), create, in("org-a", "proj-a1"), policy.Denied},
		{"custom role allows", tok("carl", "proj-a1", vmOperator), create, in("org-a", "proj-a1"), policy.Allow},
		{"custom role carve-out", tok("carl", "proj-a1", vmOperator), remove, in("org-a", "proj-a1"), policy.Denied},
		{"custom role nothing else", tok("carl", "proj-a1", vmOperator), "iam.users.get", in("org-a", "proj-a1"), policy.Denied},

		// Token roles ∩ live bindings.
		{"token admin, bound member: member's rights", tok("alice", "proj-a1", "admin", "member"), create, in("org-a", "proj-a1"), policy.Allow},
		{"token admin, bound member: not admin's", tok("alice", "proj-a1", "admin", "member"), mkUser, in("org-a", "proj-a1"), policy.Denied},
		{"token admin only, bound member: nothing", tok("alice", "proj-a1", "admin"), get, in("org-a", "proj-a1"), policy.Denied},
		{"token with no roles", tok("root", policy.SystemScope), get, policy.System, policy.Denied},
		{"unbound principal", tok("mallory", "proj-a1", "admin"), get, in("org-a", "proj-a1"), policy.Denied},
		{"binding at another scope", tok("vera", "proj-a2", "viewer"), get, in("org-a", "proj-a2"), policy.Denied},

		// Delegated tokens are bounded by the issuer's live bindings.
		{"delegated from member", delegated("bot", "alice", "proj-a1", "member"), create, in("org-a", "proj-a1"), policy.Allow},
		{"delegated from member, not more", delegated("bot", "alice", "proj-a1", "admin", "member"), mkUser, in("org-a", "proj-a1"), policy.Denied},
		{"admin subject, viewer issuer: viewer's rights", delegated("root", "vera", "proj-a1", "admin", "viewer"), get, in("org-a", "proj-a1"), policy.Allow},
		{"admin subject, viewer issuer: not admin's", delegated("root", "vera", "proj-a1", "admin", "viewer"), create, in("org-a", "proj-a1"), policy.Denied},
		{"admin subject, unbound issuer", delegated("root", "mallory", policy.SystemScope, "admin"), get, policy.System, policy.Denied},

		// The bootstrap admin needs no records.
		{"bootstrap", bootstrap, kvGet, policy.System, policy.Allow},
		{"bootstrap anywhere", bootstrap, mkUser, in("org-z", "proj-z"), policy.Allow},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := c.Decide(tc.s, tc.perm, tc.t)
			if err != nil {
				t.Fatalf("Decide: %v", err)
			}
			if got != tc.want {
				t.Errorf("Decide(%s@%s %q, %q, %+v) = %v, want %v",
					tc.s.PrincipalID, tc.s.Scope, tc.s.Roles, tc.perm, tc.t, got, tc.want)
			}
		})
	}
}

// Rights follow the live bindings: granting or removing a binding changes
// what an already-issued token may do, as soon as the cache has synced.
func TestDecideFollowsBindings(t *testing.T) {
	_, cli := store(t)
	seed(t, cli)
	c := testutil.StartPolicyCache(t, cli, nil)

	alice := tok("alice", "proj-a1", "admin", "member")
	bot := delegated("bot", "alice", "proj-a1", "member")
	here := in("org-a", "proj-a1")
	check := func(s *policy.Subject, perm string, want policy.Decision) {
		t.Helper()
		got, err := c.Decide(s, perm, here)
		if err != nil {
			t.Fatalf("Decide: %v", err)
		}
		if got != want {
			t.Errorf("Decide(%s, %q) = %v, want %v", s.PrincipalID, perm, got, want)
		}
	}

	if got := c.EffectiveRoles(alice); !slices.Equal(got, []string{policy.RoleMember}) {
		t.Errorf("EffectiveRoles = %q, want [member]", got)
	}
	check(alice, "plasmavmc.vms.create", policy.Allow)
	check(alice, "iam.users.create", policy.Denied)
	check(bot, "plasmavmc.vms.create", policy.Allow)

	// Grant admin at the project: the token's admin becomes effective.
	bind(t, cli, "b-alice-admin", "alice", policy.RoleAdmin, "proj-a1")
	syncCache(t, c)
	if got := c.EffectiveRoles(alice); !slices.Equal(got, []string{policy.RoleAdmin, policy.RoleMember}) {
		t.Errorf("EffectiveRoles = %q, want [admin member]", got)
	}
	check(alice, "iam.users.create", policy.Allow)

	// Remove both bindings: the token (and the one delegated from it) is
	// worth nothing.
	del(t, cli, policy.BindingsPrefix+"b-alice-admin")
	del(t, cli, policy.BindingsPrefix+"b-alice")
	syncCache(t, c)
	if got := c.EffectiveRoles(alice); len(got) != 0 {
		t.Errorf("EffectiveRoles = %q after unbinding", got)
	}
	check(alice, "plasmavmc.vms.create", policy.Denied)
	check(alice, "plasmavmc.vms.get", policy.Denied)
	check(bot, "plasmavmc.vms.create", policy.Denied)

	// A custom role's rules are read live too.
	carl := tok("carl", "proj-a1", vmOperator)
	check(carl, "plasmavmc.vms.delete", policy.Denied)
	testutil.PutJSON(t, cli, policy.RolesPrefix+vmOperator, policy.Role{Name: vmOperator, Permissions: []string{"plasmavmc.vms.*"}})
	syncCache(t, c)
	check(carl, "plasmavmc.vms.delete", policy.Allow)
}

func TestGrantable(t *testing.T) {
	_, cli := store(t)
	seed(t, cli)
	c := testutil.StartPolicyCache(t, cli, nil)

	admin := tok("root", policy.SystemScope, "admin")
	member := tok("alice", "proj-a1", "member")
	viewer := tok("vera", "proj-a1", "viewer")
	carl := tok("carl", "proj-a1", vmOperator)
	// alice's token claims admin, but she is bound only as member.
	claimsAdmin := tok("alice", "proj-a1", "admin")

	tests := []struct {
		name string
		s    *policy.Subject
		role string
		want bool
	}{
		{"admin grants admin", admin, policy.RoleAdmin, true},
		{"admin grants member", admin, policy.RoleMember, true},
		{"admin grants viewer", admin, policy.RoleViewer, true},
		{"admin grants custom", admin, vmOperator, true},
		{"bootstrap grants admin", bootstrap, policy.RoleAdmin, true},
		{"bootstrap grants custom", bootstrap, vmOperator, true},
		{"member grants member", member, policy.RoleMember, true},
		{"member grants viewer", member, policy.RoleViewer, true},
		{"member cannot grant admin", member, policy.RoleAdmin, false},
		{"member cannot grant custom", member, vmOperator, false},
		{"viewer grants viewer", viewer, policy.RoleViewer, true},
		{"viewer cannot grant member", viewer, policy.RoleMember, false},
		{"custom holder grants it", carl, vmOperator, true},
		{"custom holder cannot grant viewer", carl, policy.RoleViewer, false},
		{"custom holder cannot grant member", carl, policy.RoleMember, false},
		{"unbound admin claim grants nothing above", claimsAdmin, policy.RoleAdmin, false},
		{"unbound admin claim grants nothing", claimsAdmin, policy.RoleViewer, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := c.Grantable(tc.s, tc.role); got != tc.want {
				t.Errorf("Grantable(%s %q, %q) = %v, want %v", tc.s.PrincipalID, tc.s.Roles, tc.role, got, tc.want)
			}
		})
	}
}

func TestRevoked(t *testing.T) {
	_, cli := store(t)
	c := testutil.StartPolicyCache(t, cli, nil)

	cut := time.Unix(1_700_000_000, 0).UTC()
	testutil.PutJSON(t, cli, policy.RevokedTokensPrefix+"jti-gone", policy.RevokedToken{ID: "jti-gone", ExpiresAt: cut.Add(time.Hour)})
	testutil.PutJSON(t, cli, policy.RevokedPrincipalsPrefix+"alice", policy.RevokedPrincipal{PrincipalID: "alice", Before: cut})
	syncCache(t, c)

	at := func(s *policy.Subject, iat time.Time) *policy.Subject {
		s.IssuedAt = iat
		return s
	}
	withJTI := func(s *policy.Subject, jti string) *policy.Subject {
		s.TokenID = jti
		return s
	}
	tests := []struct {
		name string
		s    *policy.Subject
		want bool
	}{
		{"revoked jti", withJTI(tok("bob", "proj-a1", "member"), "jti-gone"), true},
		{"other jti", withJTI(tok("bob", "proj-a1", "member"), "jti-kept"), false},
		{"principal, issued before", at(tok("alice", "proj-a1"), cut.Add(-time.Second)), true},
		{"principal, issued at the cut", at(tok("alice", "proj-a1"), cut), true},
		{"principal, issued after", at(tok("alice", "proj-a1"), cut.Add(time.Second)), false},
		{"issuer revoked, issued before", at(delegated("bot", "alice", "proj-a1"), cut), true},
		{"issuer revoked, issued after", at(delegated("bot", "alice", "proj-a1"), cut.Add(time.Second)), false},
		{"subject revoked, other issuer", at(delegated("alice", "root", "proj-a1"), cut), true},
		{"unrelated principal", at(tok("bob", "proj-a1"), cut), false},
		{"bootstrap", bootstrap, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := c.Revoked(tc.s)
			if err != nil {
				t.Fatalf("Revoked: %v", err)
			}
			if got != tc.want {
				t.Errorf("Revoked = %v, want %v", got, tc.want)
			}
		})
	}

	// Revocations end when their records go (their lease expires).
	del(t, cli, policy.RevokedTokensPrefix+"jti-gone")
	del(t, cli, policy.RevokedPrincipalsPrefix+"alice")
	syncCache(t, c)
	for _, s := range []*policy.Subject{withJTI(tok("bob", "p"), "jti-gone"), at(tok("alice", "p"), cut)} {
		if got, err := c.Revoked(s); err != nil || got {
			t.Errorf("Revoked(%s) = %v, %v after the revocation was deleted", s.TokenID, got, err)
		}
	}
}

// Before Start and after Stop the cache knows nothing, and says so rather
// than let a request through.
func TestNotLoadedFailsClosed(t *testing.T) {
	_, cli := store(t)
	seed(t, cli)

	unavailable := func(t *testing.T, c *policy.Cache) {
		t.Helper()
		alice := tok("alice", "proj-a1", "member")
		d, err := c.Decide(alice, "plasmavmc.vms.get", in("org-a", "proj-a1"))
		if code := apierr.CodeOf(err); code != apierr.CodeUnavailable {
			t.Errorf("Decide err = %v (code %q), want %s", err, code, apierr.CodeUnavailable)
		}
		if d == policy.Allow {
			t.Error("Decide allowed while not loaded")
		}
		revoked, err := c.Revoked(alice)
		if code := apierr.CodeOf(err); code != apierr.CodeUnavailable {
			t.Errorf("Revoked err = %v (code %q), want %s", err, code, apierr.CodeUnavailable)
		}
		if revoked {
			t.Error("Revoked = true with an error; callers must look at the error")
		}
		// The bootstrap admin depends on nothing the cache holds.
		if d, err := c.Decide(bootstrap, "chainfire.kv.put", policy.System); err != nil || d != policy.Allow {
			t.Errorf("Decide(bootstrap) = %v, %v", d, err)
		}
		if r, err := c.Revoked(bootstrap); err != nil || r {
			t.Errorf("Revoked(bootstrap) = %v, %v", r, err)
		}
	}

	t.Run("before start", func(t *testing.T) {
		c := policy.NewCache(cli, nil)
		unavailable(t, c)
		// Stop without Start is a no-op.
		if err := c.Stop(context.Background()); err != nil {
			t.Fatalf("Stop before Start: %v", err)
		}
	})
	t.Run("after stop", func(t *testing.T) {
		c := policy.NewCache(cli, slog.New(slog.DiscardHandler))
		if err := c.Start(testutil.Context(t)); err != nil {
			t.Fatal(err)
		}
		if d, err := c.Decide(tok("alice", "proj-a1", "member"), "plasmavmc.vms.get", in("org-a", "proj-a1")); err != nil || d != policy.Allow {
			t.Fatalf("Decide after Start = %v, %v", d, err)
		}
		// Stop ends the follower (it waits for it), and a second Stop is harmless.
		stopped := make(chan error, 1)
		go func() { stopped <- c.Stop(context.Background()) }()
		select {
		case err := <-stopped:
			if err != nil {
				t.Fatalf("Stop: %v", err)
			}
		case <-testutil.Context(t).Done():
			t.Fatal("Stop did not return: the watch goroutine is stuck")
		}
		if err := c.Stop(context.Background()); err != nil {
			t.Fatalf("second Stop: %v", err)
		}
		unavailable(t, c)
	})
}

// WaitFor a revision made outside IAM's keyspace: no event will ever carry
// it, so the cache must ask the store for a progress report.
func TestWaitForRevisionOutsidePrefix(t *testing.T) {
	_, cli := store(t)
	seed(t, cli)
	c := testutil.StartPolicyCache(t, cli, nil)
	syncCache(t, c)

	resp, err := cli.Put(testutil.Context(t), "/other/key", "v")
	if err != nil {
		t.Fatal(err)
	}
	rev := resp.Header.Revision
	if c.Revision() >= rev {
		t.Fatalf("cache already at %d before waiting for %d", c.Revision(), rev)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := c.WaitFor(ctx, rev); err != nil {
		t.Fatalf("WaitFor(%d): %v", rev, err)
	}
	if got := c.Revision(); got < rev {
		t.Fatalf("Revision() = %d after WaitFor(%d)", got, rev)
	}

	// A context that ends first ends the wait, with a typed error.
	ctx, cancel = context.WithCancel(t.Context())
	cancel()
	if err := c.WaitFor(ctx, rev+1_000_000); apierr.CodeOf(err) != apierr.CodeUnavailable {
		t.Fatalf("WaitFor with a cancelled context = %v, want %s", err, apierr.CodeUnavailable)
	}
}

// A cache cut off from the store while others write must, once it is back,
// reflect those writes, however it catches up: by the watch resuming, or by
// re-listing when the history it needs has been compacted away.
func TestCacheCatchesUpAfterPartition(t *testing.T) {
	t.Run("history compacted", func(t *testing.T) {
		addr, direct := store(t)
		g := startGate(t, addr)
		logs := &recorder{}
		c := testutil.StartPolicyCache(t, testutil.EtcdClient(t, g.addr()), slog.New(logs))
		seed(t, direct)
		syncCache(t, c)

		g.cut()
		del(t, direct, policy.BindingsPrefix+"b-alice")
		bind(t, direct, "b-bob", "bob", policy.RoleAdmin, policy.SystemScope)
		var rev int64
		for i := range 20 {
			rev = testutil.PutJSON(t, direct, policy.OrgsPrefix+"org-churn", policy.Org{ID: "org-churn", Name: fmt.Sprint(i)})
		}
		if _, err := direct.Compact(testutil.Context(t), rev, clientv3.WithCompactPhysical()); err != nil {
			t.Fatalf("compact: %v", err)
		}
		g.restore()

		syncCache(t, c)
		if got := c.LiveRoles("alice", "proj-a1"); len(got) != 0 {
			t.Errorf("LiveRoles(alice) = %q: the delete made while cut off was missed", got)
		}
		if got := c.LiveRoles("bob", "proj-b1"); !slices.Equal(got, []string{policy.RoleAdmin}) {
			t.Errorf("LiveRoles(bob) = %q: the put made while cut off was missed", got)
		}
		if !slices.ContainsFunc(logs.errs(), func(err error) bool { return errors.Is(err, rpctypes.ErrCompacted) }) {
			t.Errorf("the watch was not ended by the compaction (logged errors: %v); the test did not test reloading", logs.errs())
		}

		// The watch is followed again after the reload.
		bind(t, direct, "b-carol", "carol", policy.RoleViewer, "proj-b1")
		syncCache(t, c)
		if got := c.LiveRoles("carol", "proj-b1"); !slices.Equal(got, []string{policy.RoleViewer}) {
			t.Errorf("LiveRoles(carol) = %q: a write after the reload was missed", got)
		}
	})

	// etcd sends a watcher that is far behind at most 1000 revisions per
	// response, each stamped with the store's current revision: Sync must
	// not take that stamp as "caught up".
	t.Run("history kept, more than one batch behind", func(t *testing.T) {
		addr, direct := store(t)
		g := startGate(t, addr)
		c := testutil.StartPolicyCache(t, testutil.EtcdClient(t, g.addr()), nil)
		syncCache(t, c)

		g.cut()
		const n = 1500
		ctx := testutil.Context(t)
		ids := make(chan int)
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for i := range ids {
					id := fmt.Sprintf("b-%04d", i)
					b, _ := json.Marshal(policy.Binding{ID: id, PrincipalID: "p-" + id, Role: policy.RoleViewer, Scope: "proj-x"})
					if _, err := direct.Put(ctx, policy.BindingsPrefix+id, string(b)); err != nil {
						t.Errorf("put %s: %v", id, err)
					}
				}
			})
		}
		for i := range n {
			ids <- i
		}
		close(ids)
		wg.Wait()
		g.restore()

		syncCache(t, c)
		if got := len(c.Bindings("")); got != n {
			t.Errorf("after Sync the cache holds %d of the %d bindings written while it was cut off", got, n)
		}
	})
}

// recorder keeps the errors a logger was given, to tell which path the
// cache took.
type recorder struct {
	mu  sync.Mutex
	err []error
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }

func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	rec.Attrs(func(a slog.Attr) bool {
		if err, ok := a.Value.Any().(error); ok {
			r.mu.Lock()
			r.err = append(r.err, err)
			r.mu.Unlock()
		}
		return true
	})
	return nil
}

func (r *recorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *recorder) WithGroup(string) slog.Handler      { return r }

func (r *recorder) errs() []error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.err)
}

// gate is a TCP proxy in front of ChainFire that a test can cut, as a
// network partition between one client and the store: cut drops every
// connection through it and holds new ones until restore.
type gate struct {
	ln     net.Listener
	target string
	done   chan struct{}
	wg     sync.WaitGroup

	mu    sync.Mutex
	open  chan struct{} // closed while connections may pass
	conns map[net.Conn]struct{}
}

func startGate(t *testing.T, target string) *gate {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &gate{ln: ln, target: target, done: make(chan struct{}), open: make(chan struct{}), conns: map[net.Conn]struct{}{}}
	close(g.open)
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			g.wg.Add(1)
			go func() {
				defer g.wg.Done()
				g.pipe(conn)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		close(g.done)
		g.mu.Lock()
		for c := range g.conns {
			c.Close()
		}
		g.mu.Unlock()
		g.wg.Wait()
	})
	return g
}

func (g *gate) addr() string { return g.ln.Addr().String() }

// track registers conn to be closed by cut; false if the gate is closing.
func (g *gate) track(conn net.Conn) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-g.done:
		return false
	default:
	}
	g.conns[conn] = struct{}{}
	return true
}

func (g *gate) untrack(conn net.Conn) {
	g.mu.Lock()
	delete(g.conns, conn)
	g.mu.Unlock()
	conn.Close()
}

func (g *gate) pipe(down net.Conn) {
	if !g.track(down) {
		down.Close()
		return
	}
	defer g.untrack(down)
	g.mu.Lock()
	open := g.open
	g.mu.Unlock()
	select {
	case <-open:
	case <-g.done:
		return
	}
	up, err := net.Dial("tcp", g.target)
	if err != nil {
		return
	}
	if !g.track(up) {
		up.Close()
		return
	}
	defer g.untrack(up)
	copied := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(up, down); copied <- struct{}{} }()
	go func() { _, _ = io.Copy(down, up); copied <- struct{}{} }()
	<-copied
	// One direction ended: end both, and wait for the other copier.
	up.Close()
	down.Close()
	<-copied
}

// cut drops every connection and holds new ones until restore.
func (g *gate) cut() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.open = make(chan struct{})
	for c := range g.conns {
		c.Close()
	}
}

// restore lets held and new connections through.
func (g *gate) restore() {
	g.mu.Lock()
	defer g.mu.Unlock()
	close(g.open)
}
