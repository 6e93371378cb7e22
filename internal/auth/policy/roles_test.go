package policy

import (
	"slices"
	"testing"

	"github.com/photoncloud/photon/internal/apierr"
)

func TestBuiltinRoleRules(t *testing.T) {
	tests := []struct {
		role string
		perm string
		want bool
	}{
		// admin: everything, including what every other role is denied.
		{RoleAdmin, "plasmavmc.vms.create", true},
		{RoleAdmin, "iam.users.create", true},
		{RoleAdmin, "iam.tokens.delegate", true},
		{RoleAdmin, "chainfire.kv.put", true},
		{RoleAdmin, "creditservice.wallets.topup", true},

		// member: works inside its scope, reads IAM, no identity admin,
		// no raw KV, no money or quota out of thin air.
		{RoleMember, "plasmavmc.vms.create", true},
		{RoleMember, "plasmavmc.vms.delete", true},
		{RoleMember, "iam.users.get", true},
		{RoleMember, "iam.projects.list", true},
		{RoleMember, "iam.users.create", false},
		{RoleMember, "iam.bindings.delete", false},
		{RoleMember, "iam.tokens.delegate", false},
		{RoleMember, "chainfire.kv.get", false},
		{RoleMember, "chainfire.kv.put", false},
		{RoleMember, "creditservice.wallets.topup", false},
		{RoleMember, "creditservice.wallets.create", false},
		{RoleMember, "creditservice.quotas.update", false},
		{RoleMember, "creditservice.wallets.get", true},
		{RoleMember, "creditservice.reservations.create", true},

		// viewer: reads only, and not the raw KV store.
		{RoleViewer, "plasmavmc.vms.get", true},
		{RoleViewer, "plasmavmc.vms.list", true},
		{RoleViewer, "iam.users.get", true},
		{RoleViewer, "plasmavmc.vms.create", false},
		{RoleViewer, "iam.users.create", false},
		{RoleViewer, "chainfire.kv.get", false},
		{RoleViewer, "chainfire.kv.list", false},
	}
	for _, tc := range tests {
		t.Run(tc.role+"/"+tc.perm, func(t *testing.T) {
			rules, ok := builtinRules[tc.role]
			if !ok {
				t.Fatalf("no built-in role %q", tc.role)
			}
			if got := Allows(rules, tc.perm); got != tc.want {
				t.Errorf("Allows(%s, %q) = %v, want %v", tc.role, tc.perm, got, tc.want)
			}
		})
	}
}

func TestAllowsLastMatchWins(t *testing.T) {
	tests := []struct {
		name  string
		rules []string
		perm  string
		want  bool
	}{
		{"no rules", nil, "a.b.c", false},
		{"no match", []string{"x.y.z"}, "a.b.c", false},
		{"exact", []string{"a.b.c"}, "a.b.c", true},
		{"deny only", []string{"!a.b.c"}, "a.b.c", false},
		{"allow then deny", []string{"a.*.*", "!a.b.c"}, "a.b.c", false},
		{"deny then allow", []string{"!a.*.*", "a.b.c"}, "a.b.c", true},
		{"deny does not touch others", []string{"a.*.*", "!a.b.c"}, "a.b.d", true},
		{"deny everything at the end", []string{"a.b.c", "!*"}, "a.b.c", false},
		{"allow everything at the end", []string{"!*", "*"}, "a.b.c", true},
		{"later non-matching rule keeps earlier", []string{"a.b.c", "!x.*.*"}, "a.b.c", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Allows(tc.rules, tc.perm); got != tc.want {
				t.Errorf("Allows(%q, %q) = %v, want %v", tc.rules, tc.perm, got, tc.want)
			}
		})
	}
}

func TestMatch(t *testing.T) {
	tests := []struct {
		pattern, perm string
		want          bool
	}{
		{"*", "a.b.c", true},
		{"*", "a", true},
		{"*", "a.b.c.d", true},
		{"a.b.c", "a.b.c", true},
		{"*.*.*", "a.b.c", true},
		{"a.*.c", "a.b.c", true},
		{"*.b.*", "a.b.c", true},
		{"a.*.c", "a.b.d", false},
		{"a.b.c", "a.b.d", false},
		{"a.b.c", "x.b.c", false},
		// Segment counts must agree: "*" stands for one segment, not many.
		{"*.*", "a.b.c", false},
		{"*.*.*", "a.b", false},
		{"*.*.*", "a.b.c.d", false},
		{"a.b", "a.b.c", false},
		{"a.b.c", "a.b", false},
		{"a.b.c.d", "a.b.c", false},
		{"a.*", "a.b.c", false},
		{"a.b.c", "a.b.c.", false},
		// Segments are compared whole, not as prefixes.
		{"ab.c.d", "a.c.d", false},
		{"a.c.d", "ab.c.d", false},
		{"iam.users.get", "iam.users.getx", false},
	}
	for _, tc := range tests {
		t.Run(tc.pattern+"~"+tc.perm, func(t *testing.T) {
			if got := match(tc.pattern, tc.perm); got != tc.want {
				t.Errorf("match(%q, %q) = %v, want %v", tc.pattern, tc.perm, got, tc.want)
			}
		})
	}
}

// checkValidation asserts err is a VALIDATION_ERROR naming field with a
// format constraint.
func checkValidation(t *testing.T, err error, field string) {
	t.Helper()
	if err == nil {
		t.Fatal("accepted, want VALIDATION_ERROR")
	}
	e := apierr.As(err)
	if e.Code != apierr.CodeValidation {
		t.Fatalf("code = %s, want %s (%v)", e.Code, apierr.CodeValidation, err)
	}
	if got := e.Details["field"]; got != field {
		t.Errorf("details.field = %v, want %q", got, field)
	}
	if got := e.Details["constraint"]; got != string(apierr.Format) {
		t.Errorf("details.constraint = %v, want %q", got, apierr.Format)
	}
}

func TestValidateRule(t *testing.T) {
	tests := []struct {
		rule string
		ok   bool
	}{
		{"*", true},
		{"!*", true},
		{"a.b.c", true},
		{"!a.b.c", true},
		{"*.*.*", true},
		{"!*.*.*", true},
		{"plasmavmc.vms.*", true},
		{"*.vms.get", true},
		{"svc-1.res_2.verb3", true},

		{"", false},
		{"!", false},
		{"!!a.b.c", false},
		{"a", false},
		{"a.b", false},
		{"*.*", false},
		{"a.b.c.d", false},
		{"*.*.*.*", false},
		{"a..c", false},
		{".b.c", false},
		{"a.b.", false},
		{"A.b.c", false},
		{"a.B.c", false},
		{"a.b.c ", false},
		{" a.b.c", false},
		{"a.b*.c", false},
		{"a.**.c", false},
		{"**", false},
		{"a.b.c!", false},
		{"a/b.c.d", false},
		{"a.b.é", false},
	}
	for _, tc := range tests {
		t.Run(tc.rule, func(t *testing.T) {
			err := ValidateRule("permissions[2]", tc.rule)
			if tc.ok {
				if err != nil {
					t.Fatalf("ValidateRule(%q) = %v, want nil", tc.rule, err)
				}
				return
			}
			checkValidation(t, err, "permissions[2]")
		})
	}
}

func TestValidatePermission(t *testing.T) {
	tests := []struct {
		perm string
		ok   bool
	}{
		{"a.b.c", true},
		{"plasmavmc.vms.create", true},
		{"svc-1.res_2.verb3", true},

		{"", false},
		{"*", false},
		{"!a.b.c", false},
		{"a.*.c", false},
		{"*.*.*", false},
		{"a.b", false},
		{"a.b.c.d", false},
		{"a..c", false},
		{"A.b.c", false},
		{"a.b.c ", false},
		{"a.b.é", false},
	}
	for _, tc := range tests {
		t.Run(tc.perm, func(t *testing.T) {
			err := ValidatePermission("permission", tc.perm)
			if tc.ok {
				if err != nil {
					t.Fatalf("ValidatePermission(%q) = %v, want nil", tc.perm, err)
				}
				return
			}
			checkValidation(t, err, "permission")
		})
	}
}

// Every built-in rule is itself a valid rule, so custom roles can copy them.
func TestBuiltinRulesAreValid(t *testing.T) {
	for _, r := range BuiltinRoles() {
		if !r.Builtin || !IsBuiltin(r.Name) {
			t.Errorf("%s: Builtin=%v IsBuiltin=%v", r.Name, r.Builtin, IsBuiltin(r.Name))
		}
		for _, p := range r.Permissions {
			if err := ValidateRule("permissions", p); err != nil {
				t.Errorf("%s: %v", r.Name, err)
			}
		}
	}
	if IsBuiltin("vm-operator") {
		t.Error(`IsBuiltin("vm-operator") = true`)
	}
}

// BuiltinRoles hands out copies: a caller editing the list cannot change
// what the built-in roles allow.
func TestBuiltinRolesAreCopies(t *testing.T) {
	roles := BuiltinRoles()
	names := make([]string, 0, len(roles))
	for _, r := range roles {
		names = append(names, r.Name)
		for i := range r.Permissions {
			r.Permissions[i] = "!*"
		}
	}
	if want := []string{RoleAdmin, RoleMember, RoleViewer}; !slices.Equal(names, want) {
		t.Errorf("BuiltinRoles names = %q, want %q", names, want)
	}
	if !Allows(builtinRules[RoleAdmin], "iam.users.create") {
		t.Error("editing BuiltinRoles' result changed the admin role")
	}
}
