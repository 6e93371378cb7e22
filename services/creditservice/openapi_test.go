package creditservice_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/photoncloud/photon/internal/apierr"
	"github.com/photoncloud/photon/internal/testutil"
	"github.com/photoncloud/photon/services/creditservice"
)

// TestOpenAPIMatchesRoutes checks docs/api/openapi/creditservice.yaml
// against the router, both ways. (services/iam's TestOpenAPIEveryServiceDocumentsAuth
// checks every OpenAPI file's bearer scheme, 401s and $refs, this one too.)
func TestOpenAPIMatchesRoutes(t *testing.T) {
	testutil.CheckOpenAPI(t, "creditservice", creditservice.Routes())
}

// openapiOp is one operation of creditservice.yaml, decoded generically.
type openapiOp struct {
	route string // "POST /api/v1/reservations"
	path  string
	op    map[string]any
}

func (o openapiOp) desc() string { s, _ := o.op["description"].(string); return s }

func (o openapiOp) responses() map[string]any { rs, _ := o.op["responses"].(map[string]any); return rs }

// params lists the $refs and names of the operation's parameters.
func (o openapiOp) params() []string {
	var out []string
	list, _ := o.op["parameters"].([]any)
	for _, p := range list {
		m, _ := p.(map[string]any)
		if r, ok := m["$ref"].(string); ok {
			out = append(out, r)
		} else if n, ok := m["name"].(string); ok {
			out = append(out, n)
		}
	}
	return out
}

// openapiLoad reads creditservice.yaml's operations by route.
func openapiLoad(t *testing.T) map[string]openapiOp {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(testutil.RepoRoot(t), "docs", "api", "openapi", "creditservice.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]map[string]any `json:"paths"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("creditservice.yaml: %v", err)
	}
	out := map[string]openapiOp{}
	for path, ops := range doc.Paths {
		for method, op := range ops {
			route := strings.ToUpper(method) + " " + path
			out[route] = openapiOp{route: route, path: path, op: op}
		}
	}
	if len(out) < len(creditservice.Routes()) {
		t.Fatalf("creditservice.yaml has %d operations, the router %d routes", len(out), len(creditservice.Routes()))
	}
	return out
}

// openapiRoutes is ops' routes in a stable order.
func openapiRoutes(ops map[string]openapiOp) []string {
	out := make([]string, 0, len(ops))
	for r := range ops {
		out = append(out, r)
	}
	sort.Strings(out)
	return out
}

// The money-moving POSTs: each takes an Idempotency-Key.
var openapiMoneyRoutes = []string{
	"POST /api/v1/wallets", "POST /api/v1/wallets/{project_id}/topup", "POST /api/v1/wallets/{project_id}/charge",
	"POST /api/v1/reservations", "POST /api/v1/reservations/{id}/commit", "POST /api/v1/reservations/{id}/release",
}

// TestOpenAPIOperations checks what creditservice.yaml promises per
// operation: the permission each needs (exactly the set the code checks),
// 403 where one is needed, 401 everywhere but /health, 400/413/415 where a
// body is taken, the Idempotency-Key and its 409 CONFLICT on the money
// POSTs and nowhere else, 402 where credit is spent, 404 where a path names
// a wallet or reservation, QUOTA_EXCEEDED on usage, and FAILED_PRECONDITION
// naming the state on commit and release.
func TestOpenAPIOperations(t *testing.T) {
	ops := openapiLoad(t)

	// The permissions the code checks: the quoted constants of wallets.go.
	var inCode []string
	srcs, err := filepath.Glob(filepath.Join(testutil.RepoRoot(t), "services", "creditservice", "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	codeRE := regexp.MustCompile(`"(creditservice\.[a-z]+\.[a-z]+)"`)
	for _, f := range srcs {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range codeRE.FindAllStringSubmatch(string(b), -1) {
			inCode = append(inCode, m[1])
		}
	}
	slices.Sort(inCode)
	inCode = slices.Compact(inCode)
	if len(inCode) < 14 {
		t.Fatalf("found only %d permissions in services/creditservice: the pattern no longer matches the code", len(inCode))
	}
	docRE := regexp.MustCompile("Needs `(creditservice\\.[a-z]+\\.[a-z]+)`")
	var inDoc []string

	money := map[string]bool{}
	for _, r := range openapiMoneyRoutes {
		money[r] = true
	}
	for _, route := range openapiRoutes(ops) {
		o := ops[route]
		rs := o.responses()
		has := func(code string) bool { _, ok := rs[code]; return ok }
		want := func(code, why string) {
			t.Helper()
			if !has(code) {
				t.Errorf("%s does not document %s (%s)", route, code, why)
			}
		}
		if route == "GET /health" {
			if has("401") {
				t.Error("GET /health documents 401, but it never authenticates")
			}
			continue
		}
		want("401", "a bad token is refused on every route but /health")
		if route != "GET /metrics" {
			m := docRE.FindStringSubmatch(o.desc())
			if m == nil {
				t.Errorf("%s: the description names no permission (\"Needs `creditservice.…`\")", route)
			} else {
				inDoc = append(inDoc, m[1])
				want("403", "it needs "+m[1])
			}
		}
		if _, ok := o.op["requestBody"]; ok {
			for _, c := range []string{"400", "413", "415"} {
				want(c, "it takes a body")
			}
		}
		idem := slices.Contains(o.params(), "#/components/parameters/IdempotencyKey")
		switch {
		case money[route] && !idem:
			t.Errorf("%s moves money but does not take the Idempotency-Key", route)
		case !money[route] && idem:
			t.Errorf("%s takes an Idempotency-Key but is not a money-moving POST", route)
		}
		if money[route] {
			want("409", "an Idempotency-Key reused with another request")
			if d, _ := rs["409"].(map[string]any)["description"].(string); !strings.Contains(d, "CONFLICT") {
				t.Errorf("%s: the 409's description %q does not name CONFLICT", route, d)
			}
		}
		// Routes that name an existing wallet or reservation answer 404
		// for a missing one or one outside the caller's scope.
		if (strings.Contains(o.path, "{id}") || strings.Contains(o.path, "/wallets/{project_id}") ||
			route == "GET /api/v1/quotas/{project_id}" || route == "POST /api/v1/quotas/{project_id}/check" ||
			route == "GET /api/v1/reservations" || route == "POST /api/v1/reservations") && !has("404") {
			t.Errorf("%s does not document 404", route)
		}
	}
	slices.Sort(inDoc)
	if inDoc = slices.Compact(inDoc); !slices.Equal(inDoc, inCode) {
		t.Errorf("the doc names permissions %q, the code checks %q", inDoc, inCode)
	}

	for _, tc := range []struct{ route, status, says string }{
		{"POST /api/v1/reservations", "402", ""},
		{"POST /api/v1/wallets/{project_id}/charge", "402", ""},
		{"POST /api/v1/wallets", "409", "ALREADY_EXISTS"},
		{"PATCH /api/v1/wallets/{project_id}", "409", "FAILED_PRECONDITION"},
		{"POST /api/v1/reservations/{id}/commit", "409", "FAILED_PRECONDITION"},
		{"POST /api/v1/reservations/{id}/release", "409", "FAILED_PRECONDITION"},
		{"POST /api/v1/quotas/{project_id}/usage", "409", "QUOTA_EXCEEDED"},
	} {
		r, ok := ops[tc.route].responses()[tc.status].(map[string]any)
		if !ok {
			t.Errorf("%s does not document %s", tc.route, tc.status)
			continue
		}
		d, _ := r["description"].(string)
		if ref, _ := r["$ref"].(string); tc.status == "402" && ref != "#/components/responses/InsufficientCredit" {
			t.Errorf("%s: 402 is %v, want the InsufficientCredit response", tc.route, r)
		}
		if !strings.Contains(d, tc.says) {
			t.Errorf("%s: the %s's description %q does not name %s", tc.route, tc.status, d, tc.says)
		}
	}
}

// openapiCall is one request of the live check.
func openapiCall(t *testing.T, method, url, token string) testutil.Answer {
	t.Helper()
	var body *bytes.Reader
	if method != "GET" {
		body = bytes.NewReader([]byte(`{}`))
	} else {
		body = bytes.NewReader(nil)
	}
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if method != "GET" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := (&http.Client{Timeout: 20 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	if strings.HasSuffix(url, "/metrics") && resp.StatusCode == http.StatusOK {
		return testutil.Answer{Status: resp.StatusCode}
	}
	codes := testutil.ErrorCodes()
	codes[apierr.CodeInsufficientCredit], codes[apierr.CodeQuotaExceeded] = true, true
	return testutil.CheckEnvelope(t, method+" "+url, resp, testutil.EnvelopeRules{Codes: codes})
}

// TestOpenAPIAuthAsDocumented checks, against a running stack in enforce
// mode, what creditservice.yaml says of every operation: anonymous and a
// forged token are 401 everywhere but /health, and a project member is
// refused (403 naming exactly the documented permission) every operation
// whose permission the built-in member role lacks, on its own project.
func TestOpenAPIAuthAsDocumented(t *testing.T) {
	cfg := testutil.StackConfig(t, "")
	cfg.AuthMode = "enforce"
	st := testutil.StartStackWith(t, cfg)
	admin := testutil.AdminToken(t, cfg.DataDir)
	cs := "http://" + st.CreditService.HTTPAddr()
	const project = "openapi-proj"

	post := func(url, token string, v any) testutil.Answer {
		t.Helper()
		b, _ := json.Marshal(v)
		req, _ := http.NewRequest("POST", url, bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		codes := testutil.ErrorCodes()
		return testutil.CheckEnvelope(t, "POST "+url, resp, testutil.EnvelopeRules{Codes: codes})
	}
	if a := post(cs+"/api/v1/wallets", admin, map[string]any{"project_id": project, "org_id": "openapi-org", "initial_balance": 1000}); a.Status != http.StatusCreated {
		t.Fatalf("create the wallet: %s", a)
	}
	a := post("http://"+st.IAM.HTTPAddr()+"/api/v1/auth/token", admin, map[string]any{"principal_id": "openapi-member", "scope_id": project, "roles": []string{"member"}})
	var tok struct{ Token string }
	if a.Status != http.StatusOK || json.Unmarshal(a.Data, &tok) != nil || tok.Token == "" {
		t.Fatalf("issue a member token: %s", a)
	}
	member := tok.Token
	// What the built-in member role is denied (internal/auth/policy).
	deniedToMember := []string{"creditservice.wallets.create", "creditservice.wallets.topup", "creditservice.wallets.update", "creditservice.quotas.update"}
	needs := regexp.MustCompile("Needs `(creditservice\\.[a-z]+\\.[a-z]+)`")
	fill := strings.NewReplacer("{project_id}", project, "{id}", "rsv-openapi")

	ops := openapiLoad(t)
	for _, route := range openapiRoutes(ops) {
		o := ops[route]
		t.Run(route, func(t *testing.T) {
			method, _, _ := strings.Cut(route, " ")
			url := cs + fill.Replace(o.path)
			if route == "GET /api/v1/reservations" {
				url += "?project_id=" + project
			}
			r := openapiCall(t, method, url, "")
			if route == "GET /health" {
				if r.Status != http.StatusOK {
					t.Errorf("anonymous: %s, want 200", r)
				}
				return
			}
			if !r.Is(apierr.CodeUnauthenticated) {
				t.Errorf("anonymous: %s, want 401 UNAUTHENTICATED", r)
			}
			if r := openapiCall(t, method, url, member[:len(member)-3]+"AAA"); !r.Is(apierr.CodeUnauthenticated) {
				t.Errorf("forged token: %s, want 401 UNAUTHENTICATED", r)
			}
			m := needs.FindStringSubmatch(o.desc())
			if m == nil || !slices.Contains(deniedToMember, m[1]) {
				return
			}
			// Validation comes before authorization: these need a body
			// that passes it.
			var r2 testutil.Answer
			switch route {
			case "POST /api/v1/wallets":
				r2 = post(url, member, map[string]any{"project_id": "openapi-other", "org_id": "openapi-org"})
			case "POST /api/v1/wallets/{project_id}/topup":
				r2 = post(url, member, map[string]any{"amount": 1})
			default:
				r2 = openapiCall(t, method, url, member)
			}
			if !r2.Is(apierr.CodeForbidden) || r2.Err.Details["permission"] != m[1] {
				t.Errorf("member: %s (details %v), want 403 FORBIDDEN for %s", r2, r2.Err, m[1])
			}
		})
	}
}
