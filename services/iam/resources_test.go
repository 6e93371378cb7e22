package iam_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/photoncloud/photon/services/iam"
)

// --- orgs and projects ----------------------------------------------------

func TestOrgs(t *testing.T) {
	t.Parallel()
	e := startEnv(t, stackConfig{})
	orgs := e.iam + "/api/v1/orgs"

	gen := okAs[iam.Org](t, do(t, "POST", orgs, "", map[string]any{"name": "Acme", "description": "rockets"}), http.StatusCreated)
	if !strings.HasPrefix(gen.ID, "org-") || gen.Name != "Acme" || gen.Description != "rockets" || gen.CreatedAt.IsZero() || !gen.UpdatedAt.Equal(gen.CreatedAt) {
		t.Fatalf("generated org = %+v", gen)
	}
	acme := okAs[iam.Org](t, do(t, "POST", orgs, "", map[string]any{"id": "acme", "name": "Acme Corp"}), http.StatusCreated)
	if acme.ID != "acme" || acme.Name != "Acme Corp" {
		t.Fatalf("org = %+v", acme)
	}

	t.Run("get", func(t *testing.T) {
		for _, want := range []iam.Org{gen, acme} {
			got := okAs[iam.Org](t, do(t, "GET", orgs+"/"+want.ID, "", nil), http.StatusOK)
			if got.ID != want.ID || got.Name != want.Name || !got.CreatedAt.Equal(want.CreatedAt) {
				t.Errorf("GET %s = %+v, want %+v", want.ID, got, want)
			}
		}
		d := fails(t, do(t, "GET", orgs+"/nope", "", nil), http.StatusNotFound, "NOT_FOUND")
		if d["kind"] != "org" || d["id"] != "nope" {
			t.Errorf("details = %v", d)
		}
	})

	t.Run("duplicate", func(t *testing.T) {
		e.unchanged(t, func() {
			d := fails(t, do(t, "POST", orgs, "", map[string]any{"id": "acme", "name": "Impostor"}), http.StatusConflict, "ALREADY_EXISTS")
			if d["id"] != "acme" {
				t.Errorf("details = %v", d)
			}
		})
		if got := okAs[iam.Org](t, do(t, "GET", orgs+"/acme", "", nil), http.StatusOK); got.Name != "Acme Corp" {
			t.Errorf("after a refused duplicate the org is %+v", got)
		}
	})

	t.Run("patch", func(t *testing.T) {
		got := okAs[iam.Org](t, do(t, "PATCH", orgs+"/acme", "", map[string]any{"description": "now with anvils"}), http.StatusOK)
		if got.Name != "Acme Corp" || got.Description != "now with anvils" || got.UpdatedAt.Before(got.CreatedAt) {
			t.Fatalf("patched = %+v", got)
		}
		got = okAs[iam.Org](t, do(t, "PATCH", orgs+"/acme", "", map[string]any{"name": "ACME"}), http.StatusOK)
		if got.Name != "ACME" || got.Description != "now with anvils" {
			t.Fatalf("patched = %+v", got)
		}
		if reread := okAs[iam.Org](t, do(t, "GET", orgs+"/acme", "", nil), http.StatusOK); reread.Name != "ACME" || reread.Description != "now with anvils" {
			t.Fatalf("re-read = %+v", reread)
		}
		e.unchanged(t, func() {
			failsOn(t, do(t, "PATCH", orgs+"/acme", "", map[string]any{"name": ""}), "name", "required")
			failsOn(t, do(t, "PATCH", orgs+"/acme", "", map[string]any{"name": strings.Repeat("n", 129)}), "name", "max_length")
			failsOn(t, do(t, "PATCH", orgs+"/acme", "", map[string]any{"description": strings.Repeat("d", 1025)}), "description", "max_length")
			failsOn(t, do(t, "PATCH", orgs+"/acme", "", map[string]any{"id": "other"}), "id", "unknown_field")
			fails(t, do(t, "PATCH", orgs+"/nope", "", map[string]any{"name": "x"}), http.StatusNotFound, "NOT_FOUND")
		})
	})

	t.Run("list pages", func(t *testing.T) {
		want := []string{gen.ID, acme.ID}
		for _, id := range []string{"page-1", "page-2", "page-3", "page-4", "page-5"} {
			e.createOrg(t, id)
			want = append(want, id)
		}
		var got []string
		token, pages := "", 0
		for {
			q := url.Values{"limit": {"2"}}
			if token != "" {
				q.Set("page_token", token)
			}
			l := okAs[iam.OrgList](t, do(t, "GET", orgs+"?"+q.Encode(), "", nil), http.StatusOK)
			if len(l.Orgs) > 2 {
				t.Fatalf("limit 2 answered %d orgs", len(l.Orgs))
			}
			for _, o := range l.Orgs {
				got = append(got, o.ID)
			}
			pages++
			if token = l.NextPageToken; token == "" {
				break
			}
			if pages > 10 {
				t.Fatal("pagination does not end")
			}
		}
		if pages < 4 || !slices.IsSorted(got) || len(slices.Compact(slices.Clone(got))) != len(got) {
			t.Fatalf("%d pages of %v: want at least 4 pages, sorted, no repeats", pages, got)
		}
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("listed %v, want %v", got, want)
		}
		all := okAs[iam.OrgList](t, do(t, "GET", orgs, "", nil), http.StatusOK)
		if len(all.Orgs) != len(want) || all.NextPageToken != "" {
			t.Fatalf("unpaged list = %+v", all)
		}
	})

	t.Run("list errors", func(t *testing.T) {
		// A token of another listing (projects) is refused, not followed.
		e.createProject(t, "p1", acme.ID)
		e.createProject(t, "p2", acme.ID)
		projects := okAs[iam.ProjectList](t, do(t, "GET", e.iam+"/api/v1/projects?limit=1", "", nil), http.StatusOK)
		if projects.NextPageToken == "" {
			t.Fatal("no next page token from the projects list")
		}
		for _, c := range []struct{ query, field, constraint string }{
			{"limit=0", "limit", "range"},
			{"limit=1001", "limit", "range"},
			{"limit=two", "limit", "range"},
			{"page_token=%21%21", "page_token", "format"},
			{"page_token=" + projects.NextPageToken, "page_token", "format"},
			{"colour=red", "colour", "unknown_field"},
		} {
			failsOn(t, do(t, "GET", orgs+"?"+c.query, "", nil), c.field, c.constraint)
		}
	})
}

func TestProjects(t *testing.T) {
	t.Parallel()
	e := startEnv(t, stackConfig{})
	projects := e.iam + "/api/v1/projects"

	t.Run("seed body in an unknown org creates the org", func(t *testing.T) {
		fails(t, do(t, "GET", e.iam+"/api/v1/orgs/org-123", "", nil), http.StatusNotFound, "NOT_FOUND")
		p := okAs[iam.Project](t, do(t, "POST", projects, "", `{"name": "production", "org_id": "org-123"}`), http.StatusCreated)
		if !strings.HasPrefix(p.ID, "proj-") || p.Name != "production" || p.OrgID != "org-123" {
			t.Fatalf("project = %+v", p)
		}
		o := okAs[iam.Org](t, do(t, "GET", e.iam+"/api/v1/orgs/org-123", "", nil), http.StatusOK)
		if o.ID != "org-123" {
			t.Fatalf("org = %+v", o)
		}
		if got := okAs[iam.Project](t, do(t, "GET", projects+"/"+p.ID, "", nil), http.StatusOK); got != p {
			t.Fatalf("GET = %+v, want %+v", got, p)
		}
		if _, ok := e.getKey(t, "/photon/iam-index/org-projects/org-123/"+p.ID); !ok {
			t.Error("no org-projects index entry for the new project")
		}
	})

	e.createOrg(t, "acme")
	e.createOrg(t, "globex")
	web := e.createProject(t, "web", "acme")
	e.createProject(t, "db", "acme")
	e.createProject(t, "hr", "globex")

	t.Run("list by org, paged", func(t *testing.T) {
		l := okAs[iam.ProjectList](t, do(t, "GET", projects+"?org_id=acme", "", nil), http.StatusOK)
		var ids []string
		for _, p := range l.Projects {
			ids = append(ids, p.ID)
		}
		if !slices.Equal(ids, []string{"db", "web"}) {
			t.Fatalf("acme's projects = %v", ids)
		}
		var all []string
		token := ""
		for range 10 {
			q := url.Values{"limit": {"1"}}
			if token != "" {
				q.Set("page_token", token)
			}
			l := okAs[iam.ProjectList](t, do(t, "GET", projects+"?"+q.Encode(), "", nil), http.StatusOK)
			for _, p := range l.Projects {
				all = append(all, p.ID)
			}
			if token = l.NextPageToken; token == "" {
				break
			}
		}
		if len(all) != 4 || !slices.Contains(all, "hr") || !slices.Contains(all, "web") {
			t.Fatalf("all projects, a page at a time = %v", all)
		}
		failsOn(t, do(t, "GET", projects+"?org_id=Bad!", "", nil), "org_id", "format")
	})

	t.Run("patch never moves a project", func(t *testing.T) {
		got := okAs[iam.Project](t, do(t, "PATCH", projects+"/web", "", map[string]any{"name": "Website", "description": "www"}), http.StatusOK)
		if got.Name != "Website" || got.Description != "www" || got.OrgID != "acme" || !got.CreatedAt.Equal(web.CreatedAt) {
			t.Fatalf("patched = %+v", got)
		}
		e.unchanged(t, func() {
			failsOn(t, do(t, "PATCH", projects+"/web", "", map[string]any{"org_id": "globex"}), "org_id", "unknown_field")
			failsOn(t, do(t, "PATCH", projects+"/web", "", map[string]any{"name": " "}), "name", "required")
			fails(t, do(t, "PATCH", projects+"/nope", "", map[string]any{"name": "x"}), http.StatusNotFound, "NOT_FOUND")
		})
		if got := okAs[iam.Project](t, do(t, "GET", projects+"/web", "", nil), http.StatusOK); got.OrgID != "acme" || got.Name != "Website" {
			t.Fatalf("re-read = %+v", got)
		}
	})

	t.Run("ids taken", func(t *testing.T) {
		e.unchanged(t, func() {
			fails(t, do(t, "POST", projects, "", map[string]any{"id": "web", "name": "again", "org_id": "acme"}), http.StatusConflict, "ALREADY_EXISTS")
			fails(t, do(t, "POST", projects, "", map[string]any{"id": "web", "name": "again", "org_id": "globex"}), http.StatusConflict, "ALREADY_EXISTS")
			d := fails(t, do(t, "POST", projects, "", map[string]any{"id": "acme", "name": "org's id", "org_id": "globex"}), http.StatusConflict, "ALREADY_EXISTS")
			if d["kind"] != "org" {
				t.Errorf("details = %v", d)
			}
			// Nor an org a project's: a scope id names one kind.
			d = fails(t, do(t, "POST", e.iam+"/api/v1/orgs", "", map[string]any{"id": "web", "name": "project's id"}), http.StatusConflict, "ALREADY_EXISTS")
			if d["kind"] != "project" {
				t.Errorf("details = %v", d)
			}
		})
	})

	t.Run("delete", func(t *testing.T) {
		p := e.createProject(t, "tmp", "globex")
		b := e.bind(t, "photon-admin", "viewer", p.ID)
		got := okAs[map[string]any](t, do(t, "DELETE", projects+"/tmp", "", nil), http.StatusOK)
		if got["id"] != "tmp" || got["deleted"] != true {
			t.Fatalf("delete answered %v", got)
		}
		fails(t, do(t, "GET", projects+"/tmp", "", nil), http.StatusNotFound, "NOT_FOUND")
		fails(t, do(t, "GET", e.iam+"/api/v1/bindings/"+b.ID, "", nil), http.StatusNotFound, "NOT_FOUND")
		if _, ok := e.getKey(t, "/photon/iam-index/org-projects/globex/tmp"); ok {
			t.Error("the org-projects index entry outlived the project")
		}
		e.unchanged(t, func() {
			fails(t, do(t, "DELETE", projects+"/tmp", "", nil), http.StatusNotFound, "NOT_FOUND")
		})
	})

	t.Run("unknown org, caller that may not create orgs", func(t *testing.T) {
		// A system-wide role that creates projects but not orgs: the
		// unknown org is a 404, and nothing is created.
		okAs[iam.Role](t, do(t, "POST", e.iam+"/api/v1/roles", "", map[string]any{
			"name": "project-maker", "permissions": []string{"iam.projects.create", "iam.projects.get"}}), http.StatusCreated)
		maker := e.delegate(t, "maker", "system", "project-maker").Token
		// An org's admin may create projects in its org only.
		orgAdmin := e.delegate(t, "acme-admin", "acme", "admin").Token
		e.unchanged(t, func() {
			d := fails(t, do(t, "POST", projects, maker, map[string]any{"id": "p1", "name": "p1", "org_id": "org-ghost"}), http.StatusNotFound, "NOT_FOUND")
			if d["kind"] != "org" || d["id"] != "org-ghost" {
				t.Errorf("details = %v", d)
			}
			fails(t, do(t, "POST", projects, orgAdmin, map[string]any{"id": "p1", "name": "p1", "org_id": "org-ghost"}), http.StatusForbidden, "FORBIDDEN")
			fails(t, do(t, "POST", projects, orgAdmin, map[string]any{"id": "p1", "name": "p1", "org_id": "globex"}), http.StatusForbidden, "FORBIDDEN")
		})
		fails(t, do(t, "GET", e.iam+"/api/v1/orgs/org-ghost", "", nil), http.StatusNotFound, "NOT_FOUND")
		// Both may create where they may.
		okAs[iam.Project](t, do(t, "POST", projects, maker, map[string]any{"id": "p2", "name": "p2", "org_id": "globex"}), http.StatusCreated)
		okAs[iam.Project](t, do(t, "POST", projects, orgAdmin, map[string]any{"id": "p3", "name": "p3", "org_id": "acme"}), http.StatusCreated)
	})
}

func TestOrgDeleteNeedsNoProjects(t *testing.T) {
	t.Parallel()
	e := startEnv(t, stackConfig{})
	e.createOrg(t, "acme", "web", "db")
	b := e.bind(t, "photon-admin", "viewer", "acme")

	e.unchanged(t, func() {
		d := fails(t, do(t, "DELETE", e.iam+"/api/v1/orgs/acme", "", nil), http.StatusConflict, "FAILED_PRECONDITION")
		if d["kind"] != "org" || d["id"] != "acme" {
			t.Errorf("details = %v", d)
		}
	})
	okAs[iam.Org](t, do(t, "GET", e.iam+"/api/v1/orgs/acme", "", nil), http.StatusOK)

	ok(t, do(t, "DELETE", e.iam+"/api/v1/projects/web", "", nil), http.StatusOK, nil)
	e.unchanged(t, func() {
		fails(t, do(t, "DELETE", e.iam+"/api/v1/orgs/acme", "", nil), http.StatusConflict, "FAILED_PRECONDITION")
	})
	ok(t, do(t, "DELETE", e.iam+"/api/v1/projects/db", "", nil), http.StatusOK, nil)
	got := okAs[map[string]any](t, do(t, "DELETE", e.iam+"/api/v1/orgs/acme", "", nil), http.StatusOK)
	if got["id"] != "acme" || got["deleted"] != true {
		t.Fatalf("delete answered %v", got)
	}
	fails(t, do(t, "GET", e.iam+"/api/v1/orgs/acme", "", nil), http.StatusNotFound, "NOT_FOUND")
	// The bindings at the org went with it: a new org of the same id
	// starts with none.
	fails(t, do(t, "GET", e.iam+"/api/v1/bindings/"+b.ID, "", nil), http.StatusNotFound, "NOT_FOUND")
	fails(t, do(t, "DELETE", e.iam+"/api/v1/orgs/acme", "", nil), http.StatusNotFound, "NOT_FOUND")
}

// TestValidation: every malformed request is a 400 (413 for a body too
// large) naming what was wrong, and changes nothing.
func TestValidation(t *testing.T) {
	t.Parallel()
	e := startEnv(t, stackConfig{})
	e.createOrg(t, "acme")
	long := strings.Repeat("a", 64)
	cases := []struct {
		name, method, path string
		body               any
		field, constraint  string
	}{
		{"org id upper case", "POST", "/api/v1/orgs", map[string]any{"id": "Acme", "name": "x"}, "id", "format"},
		{"org id bad char", "POST", "/api/v1/orgs", map[string]any{"id": "ac/me", "name": "x"}, "id", "format"},
		{"org id space", "POST", "/api/v1/orgs", map[string]any{"id": "ac me", "name": "x"}, "id", "format"},
		{"org id leading dash", "POST", "/api/v1/orgs", map[string]any{"id": "-acme", "name": "x"}, "id", "format"},
		{"org id non-ascii", "POST", "/api/v1/orgs", map[string]any{"id": "äcme", "name": "x"}, "id", "format"},
		{"org id system", "POST", "/api/v1/orgs", map[string]any{"id": "system", "name": "x"}, "id", "format"},
		{"org id too long", "POST", "/api/v1/orgs", map[string]any{"id": long, "name": "x"}, "id", "max_length"},
		{"org without name", "POST", "/api/v1/orgs", map[string]any{"id": "a1"}, "name", "required"},
		{"org name too long", "POST", "/api/v1/orgs", map[string]any{"name": strings.Repeat("n", 129)}, "name", "max_length"},
		{"org description too long", "POST", "/api/v1/orgs", map[string]any{"name": "n", "description": strings.Repeat("d", 1025)}, "description", "max_length"},
		{"project id bad char", "POST", "/api/v1/projects", map[string]any{"id": "web!", "name": "x", "org_id": "acme"}, "id", "format"},
		{"project id system", "POST", "/api/v1/projects", map[string]any{"id": "system", "name": "x", "org_id": "acme"}, "id", "format"},
		{"project id too long", "POST", "/api/v1/projects", map[string]any{"id": long, "name": "x", "org_id": "acme"}, "id", "max_length"},
		{"project without org", "POST", "/api/v1/projects", map[string]any{"name": "x"}, "org_id", "required"},
		{"project in system", "POST", "/api/v1/projects", map[string]any{"name": "x", "org_id": "system"}, "org_id", "format"},
		{"project org bad char", "POST", "/api/v1/projects", map[string]any{"name": "x", "org_id": "Acme"}, "org_id", "format"},
		{"user id bad char", "POST", "/api/v1/users", map[string]any{"id": "bob@example", "name": "Bob"}, "id", "format"},
		{"user id too long", "POST", "/api/v1/users", map[string]any{"id": long, "name": "Bob"}, "id", "max_length"},
		{"user type", "POST", "/api/v1/users", map[string]any{"name": "Bob", "type": "robot"}, "type", "enum"},
		{"user email", "POST", "/api/v1/users", map[string]any{"name": "Bob", "email": "not an address"}, "email", "format"},
		{"user password short", "POST", "/api/v1/users", map[string]any{"name": "Bob", "password": "short"}, "password", "range"},
		{"binding scope", "POST", "/api/v1/bindings", map[string]any{"principal_id": "photon-admin", "role": "viewer", "scope_id": "Bad"}, "scope_id", "format"},
		{"unknown field", "POST", "/api/v1/orgs", map[string]any{"name": "x", "colour": "red"}, "colour", "unknown_field"},
		{"unknown field on users", "POST", "/api/v1/users", map[string]any{"name": "x", "password_hash": "$argon2id$"}, "password_hash", "unknown_field"},
		{"wrong type", "POST", "/api/v1/orgs", map[string]any{"name": 5}, "name", "type"},
		{"wrong type array", "POST", "/api/v1/roles", map[string]any{"name": "r", "permissions": "*"}, "permissions", "type"},
		{"wrong type ttl", "POST", "/api/v1/auth/token", map[string]any{"principal_id": "u", "scope_id": "p", "ttl_seconds": "7200"}, "ttl_seconds", "type"},
		{"unknown query parameter", "POST", "/api/v1/orgs?dry_run=1", map[string]any{"name": "x"}, "dry_run", "unknown_field"},
		{"unknown query parameter on get", "GET", "/api/v1/orgs/acme?expand=all", nil, "expand", "unknown_field"},
		{"unknown query parameter on list", "GET", "/api/v1/users?scope=x", nil, "scope", "unknown_field"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e.unchanged(t, func() {
				failsOn(t, do(t, c.method, e.iam+c.path, "", c.body), c.field, c.constraint)
			})
		})
	}

	t.Run("bad JSON", func(t *testing.T) {
		for _, body := range []string{`{"name":`, `{"name":"x"} {"name":"y"}`, `["name"]`, `"x"`} {
			e.unchanged(t, func() {
				fails(t, do(t, "POST", e.iam+"/api/v1/orgs", "", body), http.StatusBadRequest, "INVALID_JSON")
			})
		}
	})

	t.Run("oversized body", func(t *testing.T) {
		body := append([]byte(`{"name":"`), bytes.Repeat([]byte("a"), 1<<20)...)
		body = append(body, `"}`...)
		e.unchanged(t, func() {
			fails(t, do(t, "POST", e.iam+"/api/v1/orgs", "", body), http.StatusRequestEntityTooLarge, "PAYLOAD_TOO_LARGE")
		})
	})

	t.Run("valid after all", func(t *testing.T) {
		// The same requests, corrected, succeed: the refusals above were for
		// what they named.
		okAs[iam.Org](t, do(t, "POST", e.iam+"/api/v1/orgs", "", map[string]any{"id": "a1", "name": "x"}), http.StatusCreated)
		okAs[iam.Project](t, do(t, "POST", e.iam+"/api/v1/projects", "", map[string]any{"id": "web", "name": "x", "org_id": "acme"}), http.StatusCreated)
		okAs[iam.Principal](t, do(t, "POST", e.iam+"/api/v1/users", "", map[string]any{"id": "bob", "name": "Bob", "email": "bob@example.com"}), http.StatusCreated)
	})
}

// --- users ----------------------------------------------------------------

func TestUsers(t *testing.T) {
	t.Parallel()
	// Cheap argon2id parameters: this test hashes a dozen passwords (the
	// stored format is the same; TestLogin runs at the default cost).
	e := startEnv(t, stackConfig{cheapPasswords: true})
	users := e.iam + "/api/v1/users"

	t.Run("seed create user", func(t *testing.T) {
		body := `{
"id": "user-bob",
"name": "Bob Smith",
"email": "bob@example.com",
"type": "user"
}`
		bob := okAs[iam.Principal](t, do(t, "POST", users, "", body), http.StatusCreated)
		if bob.ID != "user-bob" || bob.Name != "Bob Smith" || bob.Email != "bob@example.com" || bob.Type != "user" || bob.CreatedAt.IsZero() {
			t.Fatalf("created %+v", bob)
		}
		e.unchanged(t, func() {
			d := fails(t, do(t, "POST", users, "", body), http.StatusConflict, "ALREADY_EXISTS")
			if d["id"] != "user-bob" {
				t.Errorf("details = %v", d)
			}
			fails(t, do(t, "POST", users, "", map[string]any{"id": "user-bob", "name": "Other Bob", "type": "service_account"}), http.StatusConflict, "ALREADY_EXISTS")
		})
		if got := okAs[iam.Principal](t, do(t, "GET", users+"/user-bob", "", nil), http.StatusOK); got != bob {
			t.Fatalf("GET = %+v, want %+v", got, bob)
		}
	})

	t.Run("service accounts have no password", func(t *testing.T) {
		e.unchanged(t, func() {
			failsOn(t, do(t, "POST", users, "", map[string]any{"id": "ci-bot", "name": "CI", "type": "service_account", "password": "hunter2hunter2"}), "password", "format")
		})
		sa := okAs[iam.Principal](t, do(t, "POST", users, "", map[string]any{"name": "CI", "type": "service_account"}), http.StatusCreated)
		if !strings.HasPrefix(sa.ID, "sa-") || sa.Type != "service_account" {
			t.Fatalf("service account = %+v", sa)
		}
		e.unchanged(t, func() {
			failsOn(t, do(t, "PATCH", users+"/"+sa.ID, "", map[string]any{"password": "hunter2hunter2"}), "password", "format")
		})
	})

	t.Run("password is never shown", func(t *testing.T) {
		const pw, pw2 = "Tr0ub4dor&3-horse", "correct-horse-battery-staple"
		var bodies [][]byte
		r := do(t, "POST", users, "", map[string]any{"id": "user-pw", "name": "Pat", "password": pw})
		ok(t, r, http.StatusCreated, nil)
		bodies = append(bodies, r.Raw)
		for _, r := range []reply{
			do(t, "GET", users+"/user-pw", "", nil),
			do(t, "GET", users, "", nil),
			do(t, "PATCH", users+"/user-pw", "", map[string]any{"name": "Pat Doe"}),
			do(t, "PATCH", users+"/user-pw", "", map[string]any{"password": pw2}),
		} {
			ok(t, r, http.StatusOK, nil)
			bodies = append(bodies, r.Raw)
		}
		for _, b := range bodies {
			for _, secret := range []string{pw, pw2, "argon2", `"password"`} {
				if bytes.Contains(b, []byte(secret)) {
					t.Errorf("a response holds %q: %s", secret, b)
				}
			}
		}
		// The record every service's cache reads holds no trace of it...
		rec, found := e.getKey(t, "/photon/iam/principals/user-pw")
		if !found || !strings.Contains(rec, "Pat Doe") {
			t.Fatalf("principal record = %q", rec)
		}
		if strings.Contains(rec, pw) || strings.Contains(rec, pw2) || strings.Contains(rec, "argon2") || strings.Contains(rec, "password") {
			t.Errorf("principal record holds the password: %s", rec)
		}
		// ...the secret is an argon2id hash, IAM's alone...
		raw, found := e.getKey(t, "/photon/iam-secrets/passwords/user-pw")
		if !found {
			t.Fatal("no password hash stored")
		}
		var h struct {
			Hash string `json:"hash"`
		}
		if err := json.Unmarshal([]byte(raw), &h); err != nil || !strings.HasPrefix(h.Hash, "$argon2id$") {
			t.Fatalf("stored password = %s (%v), want an argon2id PHC string", raw, err)
		}
		// ...and no key anywhere in ChainFire holds the password itself.
		for k, v := range e.allKeys(t) {
			if strings.Contains(v, pw) || strings.Contains(v, pw2) {
				t.Errorf("key %s holds a password in plain text", k)
			}
		}
		// The new password works, the old one no longer does.
		e.bind(t, "user-pw", "viewer", "system")
		e.login(t, "user-pw", pw2, "system")
		fails(t, do(t, "POST", e.iam+"/api/v1/auth/login", "", map[string]any{"principal_id": "user-pw", "password": pw, "scope_id": "system"}),
			http.StatusUnauthorized, "UNAUTHENTICATED")
	})

	t.Run("list by scope", func(t *testing.T) {
		e.createOrg(t, "acme", "web", "db")
		e.createOrg(t, "globex", "hr")
		for _, u := range []struct{ id, role, scope string }{
			{"at-web", "viewer", "web"},
			{"at-acme", "member", "acme"},
			{"at-system", "viewer", "system"},
			{"at-db", "member", "db"},
			{"at-hr", "member", "hr"},
			{"at-globex", "admin", "globex"},
			{"at-prod", "member", "project-prod"},
			{"nowhere", "", ""},
		} {
			e.createUser(t, u.id, "")
			if u.role != "" {
				e.bind(t, u.id, u.role, u.scope)
			}
		}
		list := func(query string) []string {
			t.Helper()
			l := okAs[iam.UserList](t, do(t, "GET", users+"?"+query, "", nil), http.StatusOK)
			var ids []string
			for _, u := range l.Users {
				ids = append(ids, u.ID)
			}
			slices.Sort(ids)
			return ids
		}
		admins := []string{"at-system", "photon-admin", "user-pw"} // bound at system
		for _, c := range []struct {
			query string
			want  []string
		}{
			{"scope_id=web", append([]string{"at-acme", "at-web"}, admins...)},
			{"scope_id=acme", append([]string{"at-acme", "at-db", "at-web"}, admins...)},
			{"scope_id=hr", append([]string{"at-globex", "at-hr"}, admins...)},
			{"scope_id=project-prod", append([]string{"at-prod"}, admins...)},
			{"scope_id=system", admins},
			{"scope_id=web&type=service_account", []string{"photon-admin"}},
		} {
			got := list(c.query)
			slices.Sort(c.want)
			if !slices.Equal(got, c.want) {
				t.Errorf("?%s = %v, want %v", c.query, got, c.want)
			}
		}
		if all := list(""); !slices.Contains(all, "nowhere") || !slices.Contains(all, "user-bob") {
			t.Errorf("the system admin's unscoped list = %v, want every principal", all)
		}
		failsOn(t, do(t, "GET", users+"?scope_id=Web", "", nil), "scope_id", "format")
		failsOn(t, do(t, "GET", users+"?type=robot", "", nil), "type", "enum")
	})

	t.Run("patch self", func(t *testing.T) {
		const pw = "self-service-1"
		e.createUser(t, "user-self", pw)
		e.bind(t, "user-self", "member", "web")
		own := e.login(t, "user-self", pw, "web").Token
		got := okAs[iam.Principal](t, do(t, "PATCH", users+"/user-self", own, map[string]any{"name": "Selfie", "email": "self@example.com"}), http.StatusOK)
		if got.Name != "Selfie" || got.Email != "self@example.com" {
			t.Fatalf("patched = %+v", got)
		}
		if got := okAs[iam.Principal](t, do(t, "GET", users+"/user-self", "", nil), http.StatusOK); got.Name != "Selfie" {
			t.Fatalf("re-read = %+v", got)
		}
		// Not someone else, and not with a token an admin delegated to it.
		delegated := e.delegate(t, "user-self", "web").Token
		e.unchanged(t, func() {
			fails(t, do(t, "PATCH", users+"/user-bob", own, map[string]any{"name": "Hacked"}), http.StatusForbidden, "FORBIDDEN")
			fails(t, do(t, "PATCH", users+"/user-self", delegated, map[string]any{"name": "Hacked"}), http.StatusForbidden, "FORBIDDEN")
			fails(t, do(t, "DELETE", users+"/user-bob", own, nil), http.StatusForbidden, "FORBIDDEN")
			fails(t, do(t, "POST", users, own, map[string]any{"name": "Sock puppet"}), http.StatusForbidden, "FORBIDDEN")
		})
	})

	t.Run("delete cascades", func(t *testing.T) {
		const pw = "to-be-deleted-1"
		e.createUser(t, "user-gone", pw)
		b := e.bind(t, "user-gone", "member", "web")
		b2 := e.bind(t, "user-gone", "viewer", "acme")
		cred := e.credential(t, "user-gone", "web")
		own := e.login(t, "user-gone", pw, "web").Token
		delegated := e.delegate(t, "user-gone", "web").Token
		// A token it issued (with its own, self-issued token) goes too.
		e.bind(t, "user-gone", "admin", "db")
		adminOwn := e.login(t, "user-gone", pw, "db").Token
		issued := okAs[iam.IssuedToken](t, do(t, "POST", e.iam+"/api/v1/auth/token", adminOwn, map[string]any{"principal_id": "helper", "scope_id": "db"}), http.StatusOK).Token
		for _, tok := range []string{own, delegated, adminOwn, issued} {
			if v := e.verify(t, tok); !v.Valid {
				t.Fatalf("token not valid before the delete: %+v", v)
			}
		}

		got := okAs[map[string]any](t, do(t, "DELETE", users+"/user-gone", "", nil), http.StatusOK)
		if got["id"] != "user-gone" || got["deleted"] != true {
			t.Fatalf("delete answered %v", got)
		}
		fails(t, do(t, "GET", users+"/user-gone", "", nil), http.StatusNotFound, "NOT_FOUND")
		for _, id := range []string{b.ID, b2.ID} {
			fails(t, do(t, "GET", e.iam+"/api/v1/bindings/"+id, "", nil), http.StatusNotFound, "NOT_FOUND")
		}
		if l := okAs[iam.BindingList](t, do(t, "GET", e.iam+"/api/v1/bindings?principal_id=user-gone", "", nil), http.StatusOK); len(l.Bindings) != 0 {
			t.Errorf("bindings left: %+v", l.Bindings)
		}
		fails(t, do(t, "GET", e.iam+"/api/v1/credentials/"+cred.AccessKeyID, "", nil), http.StatusNotFound, "NOT_FOUND")
		fails(t, do(t, "POST", e.iam+"/api/v1/auth/token", "", map[string]any{"access_key_id": cred.AccessKeyID, "secret_access_key": cred.SecretAccessKey}),
			http.StatusUnauthorized, "UNAUTHENTICATED")
		for _, tok := range []string{own, delegated, adminOwn, issued} {
			if v := e.verify(t, tok); v.Valid {
				t.Errorf("a token of the deleted principal still verifies: %+v", v)
			}
			fails(t, do(t, "GET", e.iam+"/api/v1/roles", tok, nil), http.StatusUnauthorized, "UNAUTHENTICATED")
		}
		for _, key := range []string{"/photon/iam-secrets/passwords/user-gone", "/photon/iam-secrets/credentials/" + cred.AccessKeyID} {
			if _, found := e.getKey(t, key); found {
				t.Errorf("%s outlived the principal", key)
			}
		}
		fails(t, do(t, "POST", e.iam+"/api/v1/auth/login", "", map[string]any{"principal_id": "user-gone", "password": pw, "scope_id": "web"}),
			http.StatusUnauthorized, "UNAUTHENTICATED")
		e.unchanged(t, func() {
			fails(t, do(t, "DELETE", users+"/user-gone", "", nil), http.StatusNotFound, "NOT_FOUND")
		})
	})

	t.Run("bootstrap admin stays", func(t *testing.T) {
		e.unchanged(t, func() {
			fails(t, do(t, "DELETE", users+"/photon-admin", "", nil), http.StatusConflict, "FAILED_PRECONDITION")
		})
		if got := okAs[iam.Principal](t, do(t, "GET", users+"/photon-admin", "", nil), http.StatusOK); got.Type != "service_account" {
			t.Fatalf("photon-admin = %+v", got)
		}
	})
}

// --- roles and bindings ---------------------------------------------------

func TestRoles(t *testing.T) {
	t.Parallel()
	e := startEnv(t, stackConfig{})
	roles := e.iam + "/api/v1/roles"

	l := okAs[iam.RoleList](t, do(t, "GET", roles, "", nil), http.StatusOK)
	builtin := map[string][]string{}
	for _, r := range l.Roles {
		if r.Builtin {
			builtin[r.Name] = r.Permissions
		}
	}
	if len(builtin) != 3 || !slices.Equal(builtin["admin"], []string{"*"}) || !slices.Contains(builtin["member"], "!iam.*.*") || !slices.Contains(builtin["viewer"], "*.*.get") {
		t.Fatalf("built-in roles = %v", builtin)
	}
	if got := okAs[iam.Role](t, do(t, "GET", roles+"/viewer", "", nil), http.StatusOK); !got.Builtin || got.Name != "viewer" {
		t.Fatalf("GET viewer = %+v", got)
	}

	perms := []string{"*.*.get", "*.*.list", "!iam.*.*", "iam.users.get"}
	created := okAs[iam.Role](t, do(t, "POST", roles, "", map[string]any{"name": "auditor", "description": "reads", "permissions": perms}), http.StatusCreated)
	if created.Name != "auditor" || created.Builtin || !slices.Equal(created.Permissions, perms) {
		t.Fatalf("created %+v", created)
	}
	if got := okAs[iam.Role](t, do(t, "GET", roles+"/auditor", "", nil), http.StatusOK); !slices.Equal(got.Permissions, perms) || got.Description != "reads" {
		t.Fatalf("GET auditor = %+v", got)
	}

	t.Run("invalid", func(t *testing.T) {
		tooMany := make([]string, 101)
		for i := range tooMany {
			tooMany[i] = "a.b.c"
		}
		for _, c := range []struct {
			name              string
			body              map[string]any
			field, constraint string
		}{
			{"two segments", map[string]any{"name": "r1", "permissions": []string{"iam.users"}}, "permissions", "format"},
			{"four segments", map[string]any{"name": "r1", "permissions": []string{"iam.users.get.all"}}, "permissions", "format"},
			{"upper case", map[string]any{"name": "r1", "permissions": []string{"IAM.users.get"}}, "permissions", "format"},
			{"empty segment", map[string]any{"name": "r1", "permissions": []string{"iam..get"}}, "permissions", "format"},
			{"bare deny", map[string]any{"name": "r1", "permissions": []string{"!"}}, "permissions", "format"},
			{"partial wildcard", map[string]any{"name": "r1", "permissions": []string{"iam.use*.get"}}, "permissions", "format"},
			{"no rules", map[string]any{"name": "r1", "permissions": []string{}}, "permissions", "required"},
			{"too many rules", map[string]any{"name": "r1", "permissions": tooMany}, "permissions", "max_length"},
			{"bad name", map[string]any{"name": "Role One", "permissions": []string{"*"}}, "name", "format"},
		} {
			t.Run(c.name, func(t *testing.T) {
				e.unchanged(t, func() { failsOn(t, do(t, "POST", roles, "", c.body), c.field, c.constraint) })
			})
		}
		e.unchanged(t, func() {
			fails(t, do(t, "POST", roles, "", map[string]any{"name": "admin", "permissions": []string{"!*"}}), http.StatusConflict, "ALREADY_EXISTS")
			fails(t, do(t, "POST", roles, "", map[string]any{"name": "auditor", "permissions": []string{"*"}}), http.StatusConflict, "ALREADY_EXISTS")
			failsOn(t, do(t, "PATCH", roles+"/auditor", "", map[string]any{"permissions": []string{"nope"}}), "permissions", "format")
			fails(t, do(t, "PATCH", roles+"/member", "", map[string]any{"permissions": []string{"*"}}), http.StatusConflict, "FAILED_PRECONDITION")
			fails(t, do(t, "DELETE", roles+"/admin", "", nil), http.StatusConflict, "FAILED_PRECONDITION")
			fails(t, do(t, "PATCH", roles+"/ghost", "", map[string]any{"description": "x"}), http.StatusNotFound, "NOT_FOUND")
		})
	})

	t.Run("patch", func(t *testing.T) {
		got := okAs[iam.Role](t, do(t, "PATCH", roles+"/auditor", "", map[string]any{"permissions": []string{"*.*.get"}}), http.StatusOK)
		if !slices.Equal(got.Permissions, []string{"*.*.get"}) || got.Description != "reads" {
			t.Fatalf("patched = %+v", got)
		}
	})

	t.Run("delete while bound", func(t *testing.T) {
		e.createUser(t, "aud", "")
		b := e.bind(t, "aud", "auditor", "system")
		e.unchanged(t, func() {
			d := fails(t, do(t, "DELETE", roles+"/auditor", "", nil), http.StatusConflict, "FAILED_PRECONDITION")
			if d["binding_id"] != b.ID {
				t.Errorf("details = %v, want binding_id %s", d, b.ID)
			}
		})
		okAs[iam.Role](t, do(t, "GET", roles+"/auditor", "", nil), http.StatusOK)
		ok(t, do(t, "DELETE", e.iam+"/api/v1/bindings/"+b.ID, "", nil), http.StatusOK, nil)
		ok(t, do(t, "DELETE", roles+"/auditor", "", nil), http.StatusOK, nil)
		fails(t, do(t, "GET", roles+"/auditor", "", nil), http.StatusNotFound, "NOT_FOUND")
	})
}

func TestBindings(t *testing.T) {
	t.Parallel()
	e := startEnv(t, stackConfig{cheapPasswords: true})
	bindings := e.iam + "/api/v1/bindings"
	e.createOrg(t, "acme", "web", "db")
	e.createOrg(t, "globex", "hr")
	for _, u := range []string{"alice", "bob", "carol"} {
		e.createUser(t, u, "password-of-"+u)
	}

	t.Run("create", func(t *testing.T) {
		b := okAs[iam.Binding](t, do(t, "POST", bindings, "", map[string]any{"principal_id": "bob", "role": "member", "scope_id": "web"}), http.StatusCreated)
		if !strings.HasPrefix(b.ID, "bnd-") || b.PrincipalID != "bob" || b.Role != "member" || b.Scope != "web" {
			t.Fatalf("binding = %+v", b)
		}
		if got := okAs[iam.Binding](t, do(t, "GET", bindings+"/"+b.ID, "", nil), http.StatusOK); got != b {
			t.Fatalf("GET = %+v, want %+v", got, b)
		}
		e.unchanged(t, func() {
			d := fails(t, do(t, "POST", bindings, "", map[string]any{"principal_id": "bob", "role": "member", "scope_id": "web"}), http.StatusConflict, "ALREADY_EXISTS")
			if d["id"] != b.ID {
				t.Errorf("details = %v", d)
			}
			failsOn(t, do(t, "POST", bindings, "", map[string]any{"principal_id": "bob", "role": "ghost", "scope_id": "web"}), "role", "enum")
			d = fails(t, do(t, "POST", bindings, "", map[string]any{"principal_id": "nobody", "role": "member", "scope_id": "web"}), http.StatusNotFound, "NOT_FOUND")
			if d["id"] != "nobody" {
				t.Errorf("details = %v", d)
			}
			failsOn(t, do(t, "POST", bindings, "", map[string]any{"principal_id": "bob", "role": "member"}), "scope_id", "required")
		})
		l := okAs[iam.BindingList](t, do(t, "GET", bindings+"?principal_id=bob", "", nil), http.StatusOK)
		if len(l.Bindings) != 1 || l.Bindings[0] != b {
			t.Fatalf("bob's bindings = %+v", l.Bindings)
		}
	})

	e.bind(t, "alice", "admin", "acme")
	e.bind(t, "carol", "member", "web")
	orgAdmin := e.login(t, "alice", "password-of-alice", "acme").Token
	member := e.login(t, "carol", "password-of-carol", "web").Token

	t.Run("an org's admin manages its projects' bindings", func(t *testing.T) {
		b := okAs[iam.Binding](t, do(t, "POST", bindings, orgAdmin, map[string]any{"principal_id": "bob", "role": "viewer", "scope_id": "db"}), http.StatusCreated)
		okAs[iam.Binding](t, do(t, "POST", bindings, orgAdmin, map[string]any{"principal_id": "bob", "role": "admin", "scope_id": "acme"}), http.StatusCreated)
		l := okAs[iam.BindingList](t, do(t, "GET", bindings+"?scope_id=db", orgAdmin, nil), http.StatusOK)
		if len(l.Bindings) != 1 || l.Bindings[0].ID != b.ID {
			t.Fatalf("bindings at db = %+v", l.Bindings)
		}
		e.unchanged(t, func() {
			fails(t, do(t, "POST", bindings, orgAdmin, map[string]any{"principal_id": "bob", "role": "viewer", "scope_id": "system"}), http.StatusForbidden, "FORBIDDEN")
			fails(t, do(t, "POST", bindings, orgAdmin, map[string]any{"principal_id": "alice", "role": "admin", "scope_id": "system"}), http.StatusForbidden, "FORBIDDEN")
			fails(t, do(t, "POST", bindings, orgAdmin, map[string]any{"principal_id": "bob", "role": "viewer", "scope_id": "hr"}), http.StatusForbidden, "FORBIDDEN")
			fails(t, do(t, "POST", bindings, orgAdmin, map[string]any{"principal_id": "bob", "role": "viewer", "scope_id": "globex"}), http.StatusForbidden, "FORBIDDEN")
			fails(t, do(t, "GET", bindings+"?scope_id=hr", orgAdmin, nil), http.StatusForbidden, "FORBIDDEN")
		})
		ok(t, do(t, "DELETE", bindings+"/"+b.ID, orgAdmin, nil), http.StatusOK, nil)
		fails(t, do(t, "GET", bindings+"/"+b.ID, "", nil), http.StatusNotFound, "NOT_FOUND")
	})

	t.Run("a member cannot", func(t *testing.T) {
		existing := okAs[iam.BindingList](t, do(t, "GET", bindings+"?principal_id=bob&scope_id=web", "", nil), http.StatusOK).Bindings
		if len(existing) != 1 {
			t.Fatalf("bob at web = %+v", existing)
		}
		e.unchanged(t, func() {
			fails(t, do(t, "POST", bindings, member, map[string]any{"principal_id": "bob", "role": "viewer", "scope_id": "web"}), http.StatusForbidden, "FORBIDDEN")
			fails(t, do(t, "POST", bindings, member, map[string]any{"principal_id": "carol", "role": "admin", "scope_id": "web"}), http.StatusForbidden, "FORBIDDEN")
			fails(t, do(t, "DELETE", bindings+"/"+existing[0].ID, member, nil), http.StatusForbidden, "FORBIDDEN")
		})
	})

	t.Run("a binding outside the caller's scope is not found", func(t *testing.T) {
		hr := e.bind(t, "bob", "viewer", "hr")
		fails(t, do(t, "GET", bindings+"/"+hr.ID, orgAdmin, nil), http.StatusNotFound, "NOT_FOUND")
		e.unchanged(t, func() {
			fails(t, do(t, "DELETE", bindings+"/"+hr.ID, orgAdmin, nil), http.StatusNotFound, "NOT_FOUND")
		})
	})
}

// --- credentials ----------------------------------------------------------

func TestCredentials(t *testing.T) {
	t.Parallel()
	e := startEnv(t, stackConfig{})
	creds := e.iam + "/api/v1/credentials"
	tokens := e.iam + "/api/v1/auth/token"
	e.createOrg(t, "acme", "web", "db")
	e.createUser(t, "dev", "")
	e.createUser(t, "idle", "")
	e.bind(t, "dev", "member", "web")
	orgBinding := e.bind(t, "dev", "viewer", "acme")
	e.bind(t, "dev", "admin", "db") // elsewhere: must not leak into web's tokens

	r := do(t, "POST", creds, "", map[string]any{"principal_id": "dev", "project_id": "web", "description": "ci"})
	c := okAs[iam.Credential](t, r, http.StatusCreated)
	if len(c.AccessKeyID) != 20 || len(c.SecretAccessKey) != 40 || c.PrincipalID != "dev" || c.ProjectID != "web" || c.Description != "ci" {
		t.Fatalf("credential = %+v", c)
	}

	t.Run("secret shown once", func(t *testing.T) {
		for _, r := range []reply{
			do(t, "GET", creds+"/"+c.AccessKeyID, "", nil),
			do(t, "GET", creds+"?principal_id=dev", "", nil),
			do(t, "GET", creds+"?project_id=web", "", nil),
			do(t, "GET", creds, "", nil),
		} {
			ok(t, r, http.StatusOK, nil)
			if !bytes.Contains(r.Raw, []byte(c.AccessKeyID)) {
				t.Errorf("the key is not listed: %s", r)
			}
			if bytes.Contains(r.Raw, []byte(c.SecretAccessKey)) || bytes.Contains(r.Raw, []byte("secret")) {
				t.Errorf("the secret is shown again: %s", r)
			}
		}
		if rec, _ := e.getKey(t, "/photon/iam/principals/dev"); strings.Contains(rec, c.SecretAccessKey) {
			t.Error("the secret is in the principal's record")
		}
	})

	t.Run("self-issue carries the live roles at the key's project", func(t *testing.T) {
		tok := e.exchange(t, c)
		if tok.PrincipalID != "dev" || tok.ScopeID != "web" || tok.IssuedBy != "dev" || !slices.Equal(tok.Roles, []string{"member", "viewer"}) {
			t.Fatalf("token = %+v", tok)
		}
		v := e.verify(t, tok.Token)
		if !v.Valid || v.Delegated || v.ScopeID != "web" || !slices.Equal(v.EffectiveRoles, []string{"member", "viewer"}) {
			t.Fatalf("verify = %+v", v)
		}
		sub := okAs[iam.IssuedToken](t, do(t, "POST", tokens, "", map[string]any{"access_key_id": c.AccessKeyID, "secret_access_key": c.SecretAccessKey,
			"roles": []string{"viewer"}, "scope_id": "web", "principal_id": "dev"}), http.StatusOK)
		if !slices.Equal(sub.Roles, []string{"viewer"}) {
			t.Fatalf("subset token = %+v", sub)
		}
		// Live: drop the org binding and the next token no longer has it.
		ok(t, do(t, "DELETE", e.iam+"/api/v1/bindings/"+orgBinding.ID, "", nil), http.StatusOK, nil)
		tok = e.exchange(t, c)
		if !slices.Equal(tok.Roles, []string{"member"}) {
			t.Fatalf("after unbinding, token roles = %v", tok.Roles)
		}
	})

	t.Run("refused", func(t *testing.T) {
		idle := okAs[iam.Credential](t, do(t, "POST", creds, "", map[string]any{"principal_id": "idle", "project_id": "web"}), http.StatusCreated)
		wrong := []byte(c.SecretAccessKey)
		wrong[0] ^= 1
		e.unchanged(t, func() {
			d := fails(t, do(t, "POST", tokens, "", map[string]any{"access_key_id": c.AccessKeyID, "secret_access_key": c.SecretAccessKey, "scope_id": "db"}), http.StatusForbidden, "FORBIDDEN")
			if d["scope_id"] != "web" {
				t.Errorf("details = %v", d)
			}
			fails(t, do(t, "POST", tokens, "", map[string]any{"access_key_id": c.AccessKeyID, "secret_access_key": c.SecretAccessKey, "principal_id": "idle"}), http.StatusForbidden, "FORBIDDEN")
			fails(t, do(t, "POST", tokens, "", map[string]any{"access_key_id": c.AccessKeyID, "secret_access_key": c.SecretAccessKey, "roles": []string{"admin"}}), http.StatusForbidden, "FORBIDDEN")
			fails(t, do(t, "POST", tokens, "", map[string]any{"access_key_id": c.AccessKeyID, "secret_access_key": string(wrong)}), http.StatusUnauthorized, "UNAUTHENTICATED")
			fails(t, do(t, "POST", tokens, "", map[string]any{"access_key_id": "AKIANOSUCHKEY0000000", "secret_access_key": c.SecretAccessKey}), http.StatusUnauthorized, "UNAUTHENTICATED")
			failsOn(t, do(t, "POST", tokens, "", map[string]any{"access_key_id": c.AccessKeyID}), "secret_access_key", "required")
			failsOn(t, do(t, "POST", tokens, "", map[string]any{"secret_access_key": c.SecretAccessKey}), "access_key_id", "required")
			// A principal bound nowhere at the key's project gets nothing.
			d = fails(t, do(t, "POST", tokens, "", map[string]any{"access_key_id": idle.AccessKeyID, "secret_access_key": idle.SecretAccessKey}), http.StatusForbidden, "FORBIDDEN")
			if d["principal_id"] != "idle" {
				t.Errorf("details = %v", d)
			}
			// Creation needs a project and a principal that exist.
			failsOn(t, do(t, "POST", creds, "", map[string]any{"principal_id": "dev", "project_id": "system"}), "project_id", "format")
			failsOn(t, do(t, "POST", creds, "", map[string]any{"principal_id": "dev", "project_id": "acme"}), "project_id", "format")
			fails(t, do(t, "POST", creds, "", map[string]any{"principal_id": "nobody", "project_id": "web"}), http.StatusNotFound, "NOT_FOUND")
		})
	})

	t.Run("delete", func(t *testing.T) {
		got := okAs[map[string]any](t, do(t, "DELETE", creds+"/"+c.AccessKeyID, "", nil), http.StatusOK)
		if got["id"] != c.AccessKeyID || got["deleted"] != true {
			t.Fatalf("delete answered %v", got)
		}
		fails(t, do(t, "GET", creds+"/"+c.AccessKeyID, "", nil), http.StatusNotFound, "NOT_FOUND")
		e.unchanged(t, func() {
			fails(t, do(t, "POST", tokens, "", map[string]any{"access_key_id": c.AccessKeyID, "secret_access_key": c.SecretAccessKey}), http.StatusUnauthorized, "UNAUTHENTICATED")
			fails(t, do(t, "DELETE", creds+"/"+c.AccessKeyID, "", nil), http.StatusNotFound, "NOT_FOUND")
		})
	})
}
