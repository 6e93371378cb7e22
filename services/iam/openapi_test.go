package iam_test

import (
	"encoding/json"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/photoncloud/photon/internal/testutil"
	"github.com/photoncloud/photon/services/iam"
)

// TestOpenAPIMatchesRoutes checks docs/api/openapi/iam.yaml against the
// router, both ways.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	testutil.CheckOpenAPI(t, "iam", iam.Routes())
}

// openapiDoc is an OpenAPI file decoded generically, so that the checks see
// every key the file has rather than the few a struct would name.
type openapiDoc map[string]any

// openapiOp is one operation of a doc.
type openapiOp struct {
	path, method string
	op           map[string]any
}

func (o openapiOp) String() string { return strings.ToUpper(o.method) + " " + o.path }

// openapiLoad reads docs/api/openapi/<file>.
func openapiLoad(t *testing.T, file string) openapiDoc {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(testutil.RepoRoot(t), "docs", "api", "openapi", file))
	if err != nil {
		t.Fatal(err)
	}
	var doc openapiDoc
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return doc
}

var openapiMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// openapiOps lists the doc's operations in a stable order.
func openapiOps(t *testing.T, doc openapiDoc) []openapiOp {
	t.Helper()
	paths, ok := doc["paths"].(map[string]any)
	if !ok || len(paths) == 0 {
		t.Fatal("the doc has no paths")
	}
	var out []openapiOp
	for path, item := range paths {
		ops, ok := item.(map[string]any)
		if !ok {
			t.Fatalf("%s is not an object", path)
		}
		for method, op := range ops {
			if !slices.Contains(openapiMethods, method) {
				t.Errorf("%s has %q, which is no HTTP method (CheckOpenAPI reads every key as one)", path, method)
				continue
			}
			m, ok := op.(map[string]any)
			if !ok {
				t.Fatalf("%s %s is not an object", method, path)
			}
			out = append(out, openapiOp{path: path, method: method, op: m})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

// openapiResponses returns an operation's responses by status.
func openapiResponses(t *testing.T, o openapiOp) map[string]any {
	t.Helper()
	rs, ok := o.op["responses"].(map[string]any)
	if !ok || len(rs) == 0 {
		t.Fatalf("%s has no responses", o)
	}
	return rs
}

// openapiResolve follows a local "#/a/b" reference.
func openapiResolve(doc openapiDoc, ref string) (any, bool) {
	if !strings.HasPrefix(ref, "#/") {
		return nil, false
	}
	var cur any = map[string]any(doc)
	for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
		part = strings.ReplaceAll(strings.ReplaceAll(part, "~1", "/"), "~0", "~")
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[part]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// openapiRefs collects every $ref in v.
func openapiRefs(v any, out *[]string) {
	switch x := v.(type) {
	case map[string]any:
		if r, ok := x["$ref"].(string); ok {
			*out = append(*out, r)
		}
		for _, c := range x {
			openapiRefs(c, out)
		}
	case []any:
		for _, c := range x {
			openapiRefs(c, out)
		}
	}
}

// openapiSecurityNames lists the scheme names of a security requirement list
// ("" for the empty requirement {}, which means "anonymous works too").
func openapiSecurityNames(t *testing.T, what string, v any) []string {
	t.Helper()
	list, ok := v.([]any)
	if !ok {
		t.Fatalf("%s: security is %T, want a list", what, v)
	}
	var names []string
	for _, req := range list {
		m, ok := req.(map[string]any)
		if !ok {
			t.Fatalf("%s: security requirement %v is not an object", what, req)
		}
		if len(m) == 0 {
			names = append(names, "")
		}
		for k := range m {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	return names
}

// TestOpenAPIEveryServiceDocumentsAuth checks each service's OpenAPI file
// says what internal/auth does on every route: a bearer scheme, every
// operation but /health under it and answering 401 for a bad token, and
// /health open. It also checks that every $ref resolves.
func TestOpenAPIEveryServiceDocumentsAuth(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(testutil.RepoRoot(t), "docs", "api", "openapi", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 2 {
		t.Fatalf("found %d OpenAPI files, want at least chainfire's and iam's", len(files))
	}
	for _, f := range files {
		file := filepath.Base(f)
		t.Run(file, func(t *testing.T) {
			doc := openapiLoad(t, file)

			var refs []string
			openapiRefs(map[string]any(doc), &refs)
			for _, r := range refs {
				if _, ok := openapiResolve(doc, r); !ok {
					t.Errorf("$ref %q does not resolve", r)
				}
			}

			scheme, ok := openapiResolve(doc, "#/components/securitySchemes/bearerAuth")
			if !ok {
				t.Fatal("no components.securitySchemes.bearerAuth")
			}
			if m, _ := scheme.(map[string]any); m["type"] != "http" || m["scheme"] != "bearer" {
				t.Errorf("bearerAuth = %v, want type http, scheme bearer", scheme)
			}
			if got := openapiSecurityNames(t, "top level", doc["security"]); !slices.Equal(got, []string{"bearerAuth"}) {
				t.Errorf("top-level security names %q, want [bearerAuth]", got)
			}

			for _, o := range openapiOps(t, doc) {
				rs := openapiResponses(t, o)
				if o.String() == "GET /health" {
					if got := openapiSecurityNames(t, o.String(), o.op["security"]); len(got) != 0 {
						t.Errorf("GET /health security %q, want [] (it is served without authentication)", got)
					}
					if _, ok := rs["401"]; ok {
						t.Error("GET /health documents 401, but it never authenticates")
					}
					continue
				}
				if _, ok := rs["401"]; !ok {
					t.Errorf("%s does not document 401 (a bad token is refused on every route but /health)", o)
				}
				if sec, ok := o.op["security"]; ok {
					names := openapiSecurityNames(t, o.String(), sec)
					if !slices.Contains(names, "bearerAuth") {
						t.Errorf("%s security %q does not accept the bearer token", o, names)
					}
				}
				if _, ok := o.op["requestBody"]; ok {
					for _, code := range []string{"400", "413", "415"} {
						if _, ok := rs[code]; !ok {
							t.Errorf("%s takes a body but does not document %s", o, code)
						}
					}
				}
			}
		})
	}
}

// openapiPermRE matches a permission as the docs and the code spell it.
var openapiPermRE = regexp.MustCompile(`"(iam\.[a-z]+\.[a-z]+)"`)

// TestOpenAPIIAMOperations checks what iam.yaml promises per operation:
// each permission the service checks is named, routes that check one
// document 403, the anonymous routes say so, login documents 429 with
// Retry-After, and the well-known JWKS is the bare document.
func TestOpenAPIIAMOperations(t *testing.T) {
	doc := openapiLoad(t, "iam.yaml")
	ops := openapiOps(t, doc)
	byRoute := map[string]openapiOp{}
	for _, o := range ops {
		byRoute[o.String()] = o
	}
	desc := func(o openapiOp) string { s, _ := o.op["description"].(string); return s }

	// Every permission the service's code checks appears in some
	// operation's description, and every one named there is checked.
	srcs, err := filepath.Glob(filepath.Join(testutil.RepoRoot(t), "services", "iam", "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	inCode := map[string]bool{}
	for _, f := range srcs {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range openapiPermRE.FindAllStringSubmatch(string(b), -1) {
			inCode[m[1]] = true
		}
	}
	if len(inCode) < 20 {
		t.Fatalf("found only %d permissions in services/iam: the pattern no longer matches the code", len(inCode))
	}
	inDoc := map[string]bool{}
	docPermRE := regexp.MustCompile("`(iam\\.[a-z]+\\.[a-z]+)`")
	for _, o := range ops {
		for _, m := range docPermRE.FindAllStringSubmatch(desc(o), -1) {
			inDoc[m[1]] = true
		}
		// "Needs `perm`" is a Require: lacking it is 403. (Reads that only
		// ever answer 404, as GET /users/{id}, name theirs otherwise.)
		if strings.Contains(desc(o), "Needs `iam.") {
			if _, ok := openapiResponses(t, o)["403"]; !ok {
				t.Errorf("%s needs a permission but does not document 403", o)
			}
		}
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

	// Routes that work without a caller say so with the empty requirement.
	anonymous := []string{
		"GET /.well-known/jwks.json", "GET /api/v1/auth/jwks", "POST /api/v1/auth/token",
		"POST /api/v1/auth/login", "POST /api/v1/auth/verify", "POST /api/v1/auth/revoke",
		"POST /api/v1/authz/check",
	}
	for _, o := range ops {
		names := []string{"bearerAuth"}
		if sec, ok := o.op["security"]; ok {
			names = openapiSecurityNames(t, o.String(), sec)
		}
		want := []string{"bearerAuth"}
		switch {
		case o.String() == "GET /health":
			want = nil
		case slices.Contains(anonymous, o.String()):
			want = []string{"", "bearerAuth"}
		}
		if !slices.Equal(names, want) {
			t.Errorf("%s security %q, want %q", o, names, want)
		}
	}

	// Reads of one resource answer 404 for what lies outside the scope.
	for _, r := range []string{"GET /api/v1/orgs/{id}", "GET /api/v1/projects/{id}", "GET /api/v1/users/{id}",
		"GET /api/v1/bindings/{id}", "GET /api/v1/credentials/{id}", "GET /api/v1/roles/{name}"} {
		o, ok := byRoute[r]
		if !ok {
			t.Errorf("%s is not documented", r)
			continue
		}
		if _, ok := openapiResponses(t, o)["404"]; !ok {
			t.Errorf("%s does not document 404", r)
		}
	}

	// Login's rate limit.
	login, ok := byRoute["POST /api/v1/auth/login"]
	if !ok {
		t.Fatal("POST /api/v1/auth/login is not documented")
	}
	r429, ok := openapiResponses(t, login)["429"].(map[string]any)
	if !ok {
		t.Fatal("login does not document 429")
	}
	ref, _ := r429["$ref"].(string)
	limited, ok := openapiResolve(doc, ref)
	if !ok {
		t.Fatalf("login's 429 is %v, want a $ref to a response", r429)
	}
	if _, ok := openapiResolve(map[string]any{"r": limited}, "#/r/headers/Retry-After"); !ok {
		t.Errorf("login's 429 response %v has no Retry-After header", limited)
	}
	if !strings.Contains(desc(login), "RATE_LIMITED") {
		t.Error("login's description does not name RATE_LIMITED")
	}

	// The well-known JWKS is the document itself, the API one is enveloped.
	wk, ok := byRoute["GET /.well-known/jwks.json"]
	if !ok {
		t.Fatal("GET /.well-known/jwks.json is not documented")
	}
	if s, _ := openapiResolve(map[string]any{"r": openapiResponses(t, wk)["200"]}, "#/r/content/application~1json/schema/$ref"); s != "#/components/schemas/JWKS" {
		t.Errorf("/.well-known/jwks.json 200 schema $ref = %v, want the bare #/components/schemas/JWKS", s)
	}
	if !strings.Contains(desc(wk), "bare") && !strings.Contains(desc(wk), "not wrapped") {
		t.Errorf("/.well-known/jwks.json description does not say it is the bare JWKS: %q", desc(wk))
	}
}

// openapiPathParams fills a documented path's parameters.
var openapiPathParams = strings.NewReplacer("{key}", "openapi-key", "{id}", "openapi-id", "{name}", "openapi-name", "{node_id}", "7")

// TestOpenAPIAuthAsDocumented checks, against running services in enforce
// mode, what each OpenAPI file says of every operation's authentication —
// anonymous is 401 unless the operation's security allows it, /health is
// open — and, for ChainFire, that a caller without system-scope rights gets
// 403 naming exactly the permission the doc names.
func TestOpenAPIAuthAsDocumented(t *testing.T) {
	e := startEnv(t, stackConfig{authMode: "enforce"})
	bases := map[string]string{"chainfire.yaml": e.cf, "iam.yaml": e.iam}

	// A member of some project: no system-scope rights at all.
	member := e.delegate(t, "openapi-member", "openapi-proj", "member").Token
	if member == "" {
		t.Fatal("issue a member token: no token")
	}
	needs := regexp.MustCompile("Needs `([a-z]+\\.[a-z]+\\.[a-z]+)` at system scope")

	for file, base := range bases {
		doc := openapiLoad(t, file)
		for _, o := range openapiOps(t, doc) {
			t.Run(file+" "+o.String(), func(t *testing.T) {
				url := base + openapiPathParams.Replace(o.path)
				method := strings.ToUpper(o.method)
				anonymousOK := false
				if sec, ok := o.op["security"]; ok {
					anonymousOK = slices.Contains(openapiSecurityNames(t, o.String(), sec), "")
				}
				r := do(t, method, url, "", nil)
				switch {
				case o.String() == "GET /health":
					if r.Status != http.StatusOK {
						t.Errorf("anonymous: %d %s, want 200", r.Status, r.Raw)
					}
				case anonymousOK:
					if r.Status == http.StatusUnauthorized {
						t.Errorf("anonymous: 401 %s, but the doc says it works without a token", r.Raw)
					}
				default:
					if r.Status != http.StatusUnauthorized || r.code() != "UNAUTHENTICATED" {
						t.Errorf("anonymous: %d %s, want 401 UNAUTHENTICATED", r.Status, r.Raw)
					}
				}
				// A forged token: 401 everywhere but /health.
				r = do(t, method, url, member[:len(member)-3]+"AAA", nil)
				if o.String() != "GET /health" && (r.Status != http.StatusUnauthorized || r.code() != "UNAUTHENTICATED") {
					t.Errorf("forged token: %d %s, want 401 UNAUTHENTICATED", r.Status, r.Raw)
				}

				if file != "chainfire.yaml" {
					return
				}
				desc, _ := o.op["description"].(string)
				m := needs.FindStringSubmatch(desc)
				_, has403 := openapiResponses(t, o)["403"]
				if (m != nil) != has403 {
					t.Fatalf("description %q and 403 documented = %v disagree", desc, has403)
				}
				r = do(t, method, url, member, nil)
				if m == nil {
					if r.Status == http.StatusForbidden || r.Status == http.StatusUnauthorized {
						t.Errorf("member: %d %s, but the doc names no permission", r.Status, r.Raw)
					}
					return
				}
				if r.Status != http.StatusForbidden || r.code() != "FORBIDDEN" || r.Error.Details["permission"] != m[1] {
					t.Errorf("member: %d %s, want 403 FORBIDDEN for %s", r.Status, r.Raw, m[1])
				}
			})
		}
	}
}

// TestOpenAPIJWKSForms checks the two JWKS documents as iam.yaml describes
// them: the well-known one bare, the API one in the envelope, the same keys.
func TestOpenAPIJWKSForms(t *testing.T) {
	e := startEnv(t, stackConfig{authMode: "enforce"})

	bare := do(t, "GET", e.iam+"/.well-known/jwks.json", "", nil)
	if bare.Status != http.StatusOK {
		t.Fatalf("GET /.well-known/jwks.json = %s", bare)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(bare.Raw, &top); err != nil {
		t.Fatalf("well-known JWKS is not a JSON object: %v", err)
	}
	if _, ok := top["keys"]; !ok || len(top) != 1 {
		t.Errorf("well-known JWKS has keys %v, want exactly [keys] (no envelope)", slices.Sorted(maps.Keys(top)))
	}
	if cc := bare.Header.Get("Cache-Control"); cc != "max-age=60" {
		t.Errorf("Cache-Control %q, want max-age=60 as documented", cc)
	}
	var set struct {
		Keys []struct{ Kty, Crv, X, Kid, Alg, Use string } `json:"keys"`
	}
	if err := json.Unmarshal(bare.Raw, &set); err != nil || len(set.Keys) == 0 {
		t.Fatalf("well-known JWKS %s: %v (want at least one key)", bare.Raw, err)
	}
	for _, k := range set.Keys {
		if k.Kty != "OKP" || k.Crv != "Ed25519" || k.Alg != "EdDSA" || k.Use != "sig" || k.Kid == "" || k.X == "" {
			t.Errorf("key %+v does not match the JWK schema's enums", k)
		}
	}

	wrapped := do(t, "GET", e.iam+"/api/v1/auth/jwks", "", nil)
	if wrapped.Status != http.StatusOK {
		t.Fatalf("GET /api/v1/auth/jwks = %s", wrapped)
	}
	if wrapped.Meta.RequestID == "" {
		t.Fatalf("/api/v1/auth/jwks is not the envelope: %s", wrapped.Raw)
	}
	if !openapiJSONEqual(t, wrapped.Data, bare.Raw) {
		t.Errorf("the enveloped JWKS %s differs from the bare one %s", wrapped.Data, bare.Raw)
	}
}

// openapiJSONEqual reports whether two JSON documents hold the same value.
func openapiJSONEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatal(err)
	}
	return reflect.DeepEqual(x, y)
}
