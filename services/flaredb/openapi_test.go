package flaredb_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/photoncloud/photon/internal/testutil"
	"github.com/photoncloud/photon/services/flaredb"
)

// TestOpenAPIMatchesRoutes checks docs/api/openapi/flaredb.yaml against the
// router, both ways. (services/iam's TestOpenAPIEveryServiceDocumentsAuth
// checks every OpenAPI file's bearer scheme, 401s and $refs, this one too.)
func TestOpenAPIMatchesRoutes(t *testing.T) {
	testutil.CheckOpenAPI(t, "flaredb", flaredb.Routes())
}

// TestOpenAPIPermissions checks that every permission FlareDB's handlers
// check is named in some operation's description, every one named there is
// checked, and an operation that names one documents 403.
func TestOpenAPIPermissions(t *testing.T) {
	root := testutil.RepoRoot(t)
	raw, err := os.ReadFile(filepath.Join(root, "docs", "api", "openapi", "flaredb.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]struct {
			Description string         `json:"description"`
			Responses   map[string]any `json:"responses"`
		} `json:"paths"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	docRE := regexp.MustCompile("`(flaredb\\.[a-z]+\\.[a-z]+)`")
	inDoc := map[string]bool{}
	for path, ops := range doc.Paths {
		for method, op := range ops {
			ms := docRE.FindAllStringSubmatch(op.Description, -1)
			for _, m := range ms {
				inDoc[m[1]] = true
			}
			if _, ok := op.Responses["403"]; len(ms) > 0 && !ok {
				t.Errorf("%s %s needs a permission but does not document 403", strings.ToUpper(method), path)
			}
		}
	}
	srcs, err := filepath.Glob(filepath.Join(root, "services", "flaredb", "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	codeRE := regexp.MustCompile(`"(flaredb\.[a-z]+\.[a-z]+)"`)
	inCode := map[string]bool{}
	for _, f := range srcs {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range codeRE.FindAllStringSubmatch(string(b), -1) {
			inCode[m[1]] = true
		}
	}
	if len(inCode) < 8 {
		t.Fatalf("found only %d permissions in services/flaredb: the pattern no longer matches the code", len(inCode))
	}
	for p := range inCode {
		if !inDoc[p] {
			t.Errorf("the service checks %s, but no operation's description names it", p)
		}
	}
	for p := range inDoc {
		if !inCode[p] {
			t.Errorf("the doc names %s, which the service never checks", p)
		}
	}
}
