package policy

import (
	"strings"

	"github.com/photoncloud/photon/internal/apierr"
)

// Built-in role names.
const (
	RoleAdmin  = "admin"
	RoleMember = "member"
	RoleViewer = "viewer"
)

// Rules of built-in roles. A permission is "<service>.<resource>.<verb>";
// a rule matches one, with "*" standing for a whole segment (or, alone, for
// everything) and a leading "!" denying what it matches. The last matching
// rule decides, as in .gitignore, so a role can allow broadly and then carve
// out (member) or deny broadly and then re-allow (member's IAM reads).
var builtinRules = map[string][]string{
	RoleAdmin: {"*"},
	// A member works inside its scope but neither administers identity,
	// touches the raw KV store, nor makes money or quota appear.
	RoleMember: {
		"*.*.*",
		"!iam.*.*", "iam.*.get", "iam.*.list",
		"!chainfire.*.*",
		"!creditservice.wallets.create", "!creditservice.wallets.topup", "!creditservice.wallets.update",
		"!creditservice.quotas.update",
	},
	RoleViewer: {"*.*.get", "*.*.list", "!chainfire.*.*"},
}

// rank orders the built-in roles for delegation: a holder of one may hand
// out any role of lower rank.
var rank = map[string]int{RoleViewer: 1, RoleMember: 2, RoleAdmin: 3}

// BuiltinRoles returns the built-in roles, for listing.
func BuiltinRoles() []Role {
	out := make([]Role, 0, len(builtinRules))
	for _, name := range []string{RoleAdmin, RoleMember, RoleViewer} {
		out = append(out, Role{Name: name, Permissions: append([]string(nil), builtinRules[name]...), Builtin: true})
	}
	return out
}

// IsBuiltin reports whether name is a built-in role.
func IsBuiltin(name string) bool { _, ok := builtinRules[name]; return ok }

// Allows reports whether rules grant perm: the last rule that matches decides.
func Allows(rules []string, perm string) bool {
	allowed := false
	for _, r := range rules {
		deny := strings.HasPrefix(r, "!")
		if match(strings.TrimPrefix(r, "!"), perm) {
			allowed = !deny
		}
	}
	return allowed
}

// match reports whether pattern (segments, "*" wildcards) matches perm.
func match(pattern, perm string) bool {
	if pattern == "*" {
		return true
	}
	for {
		p, prest, pmore := strings.Cut(pattern, ".")
		s, srest, smore := strings.Cut(perm, ".")
		if p != "*" && p != s {
			return false
		}
		if !pmore || !smore {
			return pmore == smore
		}
		pattern, perm = prest, srest
	}
}

// ValidateRule checks one rule of a custom role: "*" or three dot-separated
// segments of [a-z0-9_-] or "*", optionally prefixed with "!".
func ValidateRule(field, r string) error {
	body := strings.TrimPrefix(r, "!")
	if body == "*" {
		return nil
	}
	segs := strings.Split(body, ".")
	if len(segs) != 3 {
		return apierr.Validation(field, apierr.Format, "permission %q must be <service>.<resource>.<verb> (segments may be *)", r)
	}
	for _, s := range segs {
		if s == "*" {
			continue
		}
		if s == "" || !validSegment(s) {
			return apierr.Validation(field, apierr.Format, "permission %q: segment %q must be lower-case letters, digits, _ or -", r, s)
		}
	}
	return nil
}

// ValidatePermission checks a concrete permission (no wildcards, no "!").
func ValidatePermission(field, p string) error {
	segs := strings.Split(p, ".")
	if len(segs) != 3 {
		return apierr.Validation(field, apierr.Format, "permission %q must be <service>.<resource>.<verb>", p)
	}
	for _, s := range segs {
		if s == "" || !validSegment(s) {
			return apierr.Validation(field, apierr.Format, "permission %q: segment %q must be lower-case letters, digits, _ or -", p, s)
		}
	}
	return nil
}

func validSegment(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
