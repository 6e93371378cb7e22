package testutil

import (
	"os"
	"path/filepath"
	"sort"
	"testing"

	"sigs.k8s.io/yaml"
)

// CheckOpenAPI checks docs/api/openapi/<service>.yaml against a service's
// routes (ServeMux patterns) both ways: every route is documented, and every
// documented operation names, in its x-route, a route that exists.
func CheckOpenAPI(t *testing.T, service string, routes []string) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(RepoRoot(t), "docs", "api", "openapi", service+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]struct {
			Route string `json:"x-route"`
		} `json:"paths"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("openapi %s: %v", service, err)
	}
	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		for method, op := range ops {
			if op.Route == "" {
				t.Errorf("%s: %s %s has no x-route", service, method, path)
				continue
			}
			documented[op.Route] = true
		}
	}
	served := map[string]bool{}
	for _, r := range routes {
		served[r] = true
		if !documented[r] {
			t.Errorf("%s: route %q is not in the OpenAPI file", service, r)
		}
	}
	var extra []string
	for r := range documented {
		if !served[r] {
			extra = append(extra, r)
		}
	}
	sort.Strings(extra)
	for _, r := range extra {
		t.Errorf("%s: the OpenAPI file documents %q, which no route serves", service, r)
	}
}
