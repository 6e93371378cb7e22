package chainfire_test

import (
	"os"
	"path/filepath"
	"sort"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/photoncloud/photon/internal/testutil"
	"github.com/photoncloud/photon/services/chainfire"
)

// TestOpenAPIMatchesRoutes checks docs/api/openapi/chainfire.yaml against
// the router both ways: every route is documented, and every documented
// operation names a route that exists.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(testutil.RepoRoot(t), "docs", "api", "openapi", "chainfire.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]struct {
			Route string `json:"x-route"`
		} `json:"paths"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("openapi: %v", err)
	}
	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		for method, op := range ops {
			if op.Route == "" {
				t.Errorf("%s %s has no x-route", method, path)
				continue
			}
			documented[op.Route] = true
		}
	}
	routes := map[string]bool{}
	for _, r := range chainfire.Routes() {
		routes[r] = true
		if !documented[r] {
			t.Errorf("route %q is not in the OpenAPI file", r)
		}
	}
	var extra []string
	for r := range documented {
		if !routes[r] {
			extra = append(extra, r)
		}
	}
	sort.Strings(extra)
	for _, r := range extra {
		t.Errorf("the OpenAPI file documents %q, which no route serves", r)
	}
}
