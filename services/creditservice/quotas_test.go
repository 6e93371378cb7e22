package creditservice_test

import (
	"net/http"
	"testing"

	"github.com/photoncloud/photon/internal/apierr"
	"github.com/photoncloud/photon/services/creditservice"
)

// TestQuotas covers limits, checks and usage through the REST API.
func TestQuotas(t *testing.T) {
	e := startCS(t, nil)
	const p = "proj-quota"
	path := "/api/v1/quotas/" + p

	q := ok[creditservice.Quota](t, e.do(t, req{method: "GET", path: path}), http.StatusOK)
	if q.ProjectID != p || len(q.Limits) != 0 || len(q.Usage) != 0 || q.Limits == nil {
		t.Fatalf("quota without limits: %+v", q)
	}
	if _, found := getJSON[creditservice.Quota](t, e, csPrefix+"quotas/"+p); found {
		t.Fatal("reading a quota stored one")
	}
	// Nothing limited: anything fits.
	if c := ok[creditservice.QuotaCheck](t, e.do(t, req{method: "POST", path: path + "/check", body: `{"resources":{"vcpus":1000}}`}), http.StatusOK); !c.Allowed || len(c.Violations) != 0 {
		t.Fatalf("check without limits: %+v", c)
	}

	q = ok[creditservice.Quota](t, e.do(t, req{method: "PUT", path: path,
		body: `{"org_id":"org-123","limits":{"vcpus":8,"memory_mib":16384,"vms":2}}`}), http.StatusOK)
	if q.Limits["vcpus"] != 8 || q.Limits["memory_mib"] != 16384 || q.Limits["vms"] != 2 || q.OrgID != "org-123" {
		t.Fatalf("set limits: %+v", q)
	}
	stored, found := getJSON[creditservice.Quota](t, e, csPrefix+"quotas/"+p)
	if !found || stored.Limits["vcpus"] != 8 {
		t.Fatalf("stored quota %+v", stored)
	}

	q = ok[creditservice.Quota](t, e.do(t, req{method: "POST", path: path + "/usage", body: `{"resources":{"vcpus":4,"memory_mib":8192,"vms":1}}`}), http.StatusOK)
	if q.Usage["vcpus"] != 4 || q.Usage["memory_mib"] != 8192 || q.Usage["vms"] != 1 {
		t.Fatalf("usage %+v", q.Usage)
	}

	checks := []struct {
		name, body string
		allowed    bool
		violations []creditservice.QuotaViolation
	}{
		{"fits", `{"resources":{"vcpus":4,"vms":1}}`, true, nil},
		{"unlimited resource", `{"resources":{"disk_gb":100000}}`, true, nil},
		{"one over", `{"resources":{"vcpus":5,"vms":1}}`, false, []creditservice.QuotaViolation{{Resource: "vcpus", Limit: 8, Usage: 4, Requested: 5}}},
		{"two over", `{"resources":{"vms":2,"memory_mib":8193}}`, false, []creditservice.QuotaViolation{
			{Resource: "memory_mib", Limit: 16384, Usage: 8192, Requested: 8193}, {Resource: "vms", Limit: 2, Usage: 1, Requested: 2}}},
	}
	for _, c := range checks {
		t.Run("check "+c.name, func(t *testing.T) {
			e.unchanged(t, "a check", func() {
				got := ok[creditservice.QuotaCheck](t, e.do(t, req{method: "POST", path: path + "/check", body: c.body}), http.StatusOK)
				if got.Allowed != c.allowed || len(got.Violations) != len(c.violations) {
					t.Fatalf("check: %+v, want allowed=%v %+v", got, c.allowed, c.violations)
				}
				for i, v := range c.violations {
					if got.Violations[i] != v {
						t.Fatalf("violation %d: %+v, want %+v", i, got.Violations[i], v)
					}
				}
			})
		})
	}

	bad := []struct {
		name, method, path, body string
		code                     apierr.Code
	}{
		{"usage over the limit", "POST", path + "/usage", `{"resources":{"vcpus":5}}`, apierr.CodeQuotaExceeded},
		{"usage below zero", "POST", path + "/usage", `{"resources":{"vms":-2}}`, apierr.CodeValidation},
		{"usage bad name", "POST", path + "/usage", `{"resources":{"VCPUs":1}}`, apierr.CodeValidation},
		{"usage huge", "POST", path + "/usage", `{"resources":{"disk_gb":1000000000000001}}`, apierr.CodeValidation},
		{"usage wrong type", "POST", path + "/usage", `{"resources":{"vcpus":"1"}}`, apierr.CodeValidation},
		{"usage unknown field", "POST", path + "/usage", `{"resources":{},"force":true}`, apierr.CodeValidation},
		{"check negative", "POST", path + "/check", `{"resources":{"vcpus":-1}}`, apierr.CodeValidation},
		{"limits negative", "PUT", path, `{"limits":{"vcpus":-1}}`, apierr.CodeValidation},
		{"limits float", "PUT", path, `{"limits":{"vcpus":1.5}}`, apierr.CodeValidation},
		{"bad project", "PUT", "/api/v1/quotas/Bad!", `{"limits":{"vcpus":1}}`, apierr.CodeValidation},
		{"bad JSON", "PUT", path, `{"limits":`, apierr.CodeInvalidJSON},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			e.unchanged(t, c.name, func() {
				d := fails(t, e.do(t, req{method: c.method, path: c.path, body: c.body}), c.code)
				if c.code == apierr.CodeQuotaExceeded {
					vs, _ := d["violations"].([]any)
					if len(vs) != 1 || d["project_id"] != p {
						t.Fatalf("details %v", d)
					}
				}
			})
		})
	}

	// Freeing, down to exactly zero, and a lowered limit keeps usage.
	q = ok[creditservice.Quota](t, e.do(t, req{method: "POST", path: path + "/usage", body: `{"resources":{"vms":-1,"vcpus":4}}`}), http.StatusOK)
	if _, has := q.Usage["vms"]; has || q.Usage["vcpus"] != 8 {
		t.Fatalf("usage %+v", q.Usage)
	}
	q = ok[creditservice.Quota](t, e.do(t, req{method: "PUT", path: path, body: `{"limits":{"vcpus":2}}`}), http.StatusOK)
	if q.Usage["vcpus"] != 8 || q.Limits["vcpus"] != 2 || len(q.Limits) != 1 {
		t.Fatalf("after lowering the limit: %+v", q)
	}
	e.unchanged(t, "usage past a lowered limit", func() {
		fails(t, e.do(t, req{method: "POST", path: path + "/usage", body: `{"resources":{"vcpus":1}}`}), apierr.CodeQuotaExceeded)
	})
	got := ok[creditservice.Quota](t, e.do(t, req{method: "GET", path: path}), http.StatusOK)
	if got.Usage["vcpus"] != 8 || got.Limits["vcpus"] != 2 {
		t.Fatalf("quota %+v", got)
	}
}

// TestQuotaUsageBound: usage of an unlimited resource stops at 10^15 with a
// validation error, rather than wrapping around int64.
func TestQuotaUsageBound(t *testing.T) {
	e := startCS(t, nil)
	path := "/api/v1/quotas/proj-big/usage"
	ok[creditservice.Quota](t, e.do(t, req{method: "POST", path: path, body: `{"resources":{"storage_bytes":1000000000000000}}`}), http.StatusOK)
	e.unchanged(t, "usage past 10^15", func() {
		d := fails(t, e.do(t, req{method: "POST", path: path, body: `{"resources":{"storage_bytes":1}}`}), apierr.CodeValidation)
		if d["field"] != "resources.storage_bytes" {
			t.Fatalf("details %v", d)
		}
	})
}
