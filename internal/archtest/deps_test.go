package archtest

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"

	"github.com/photoncloud/photon/internal/testutil"
)

const module = "github.com/photoncloud/photon"

type pkg struct {
	ImportPath string
	Imports    []string
}

// packages lists the module's packages with their direct imports.
func packages(t *testing.T) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-json", "./...")
	cmd.Dir = testutil.RepoRoot(t)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) < 5 {
		t.Fatalf("go list found only %d packages", len(pkgs))
	}
	return pkgs
}

// serviceOf is the service a package under services/ belongs to: its
// first path segment there (services/prismnet/agent is PrismNET's).
func serviceOf(rel string) string {
	name, _, _ := strings.Cut(strings.TrimPrefix(rel, "services/"), "/")
	return name
}

// TestDependencyRules: domain plumbing knows nothing of HTTP; shared
// plumbing never reaches into a service (only the assembly and the test
// helpers do); a service never imports another service or the binary (its
// own packages, such as PrismNET's agent and data plane, are one service).
func TestDependencyRules(t *testing.T) {
	noHTTP := map[string]bool{
		module + "/internal/state":     true,
		module + "/internal/lifecycle": true,
		module + "/internal/ids":       true,
		module + "/internal/registry":  true,
		module + "/internal/flagenv":   true,
		module + "/internal/keylock":   true,
	}
	mayImportServices := map[string]bool{
		module + "/internal/platform": true,
		module + "/internal/testutil": true,
	}
	for _, p := range packages(t) {
		rel := strings.TrimPrefix(p.ImportPath, module+"/")
		for _, imp := range p.Imports {
			switch {
			case noHTTP[p.ImportPath] && (imp == "net/http" || strings.HasPrefix(imp, "net/http/")):
				t.Errorf("%s imports %s: domain plumbing must not know HTTP", rel, imp)
			case strings.HasPrefix(rel, "internal/") && strings.HasPrefix(imp, module+"/services/") && !mayImportServices[p.ImportPath]:
				t.Errorf("%s imports %s: shared plumbing must not depend on a service", rel, imp)
			case strings.HasPrefix(rel, "services/") && strings.HasPrefix(imp, module+"/services/") && serviceOf(rel) != serviceOf(strings.TrimPrefix(imp, module+"/")):
				t.Errorf("%s imports %s: services talk through interfaces, not each other's packages", rel, imp)
			case strings.HasPrefix(imp, module+"/cmd/"):
				t.Errorf("%s imports the binary's package %s", rel, imp)
			}
		}
	}
}
