package nightlight

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/photoncloud/photon/internal/apierr"
	"github.com/photoncloud/photon/internal/auth"
	"github.com/photoncloud/photon/internal/auth/policy"
)

// Permissions NightLight checks.
const (
	permRead  = "nightlight.metrics.get"
	permWrite = "nightlight.metrics.create"
)

// tenantPaths are the API paths (under /api/v1) that a project's token may
// use: they read or write series, and every series they touch passes
// through the scoped storage. The rest (targets, rules, alerts, metadata,
// TSDB status, admin) describe the platform as a whole and need the system
// scope.
var tenantPaths = map[string]bool{
	"/query": true, "/query_range": true, "/query_exemplars": true, "/series": true,
	"/labels": true, "/read": true, "/write": true, "/status/buildinfo": true,
	"/format_query": true, "/parse_query": true,
}

func tenantPath(p string) bool {
	if tenantPaths[p] {
		return true
	}
	// /label/<name>/values
	rest, ok := strings.CutPrefix(p, "/label/")
	return ok && strings.HasSuffix(rest, "/values")
}

// tenancy authenticates an API request (path relative to /api/v1) and
// puts its scope in the context: the system scope sees and writes every
// series as it is; a project's token sees its project's series and stamps
// its project on what it writes; an org's token reads its projects'.
func (s *Server) tenancy(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r, err := s.authn.Authenticate(r)
		if err != nil {
			writeAPIError(w, err)
			return
		}
		subj, err := auth.Caller(r.Context())
		if err != nil {
			writeAPIError(w, err)
			return
		}
		perm := permRead
		if r.URL.Path == "/write" {
			perm = permWrite
		}
		var scope Scope
		var target policy.Target
		switch {
		case subj.Scope == policy.SystemScope:
			scope, target = Scope{All: true}, policy.System
		case s.authn.Cache().IsOrg(subj.Scope):
			scope, target = Scope{Projects: s.authn.Cache().ProjectsOf(subj.Scope)}, policy.Target{OrgID: subj.Scope}
		default:
			scope, target = Scope{Projects: []string{subj.Scope}}, policy.Target{ProjectID: subj.Scope}
		}
		if !scope.All && !tenantPath(r.URL.Path) {
			writeAPIError(w, apierr.New(apierr.CodeForbidden, "this endpoint describes the whole platform: it needs a system-scoped token"))
			return
		}
		if perm == permWrite && !scope.All && len(scope.Projects) != 1 {
			writeAPIError(w, apierr.New(apierr.CodeForbidden, "remote write needs a project-scoped (or system) token: its series are stamped with that project"))
			return
		}
		if err := auth.Require(r.Context(), perm, target); err != nil {
			writeAPIError(w, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(withScope(r.Context(), scope)))
	})
}

// writeAPIError answers an auth failure in the Prometheus API's error
// form, which every Prometheus client parses (not the seed's envelope).
func writeAPIError(w http.ResponseWriter, err error) {
	status, typ := http.StatusUnauthorized, "unauthorized"
	switch apierr.CodeOf(err) {
	case apierr.CodeForbidden:
		status, typ = http.StatusForbidden, "forbidden"
	case apierr.CodeUnavailable:
		status, typ = http.StatusServiceUnavailable, "unavailable"
	case apierr.CodeUnauthenticated:
	default:
		status, typ = http.StatusInternalServerError, "internal"
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"status": "error", "errorType": typ, "error": apierr.As(err).Message})
}
