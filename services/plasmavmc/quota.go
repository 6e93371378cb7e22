package plasmavmc

import (
	"context"
	"net/url"
	"sort"

	"github.com/photoncloud/photon/internal/apierr"
)

// A project's quota is CreditService's (GET /api/v1/quotas/{project}, read
// as the VM's owner); what the project already uses is PlasmaVMC's own
// count of its VMs, so the check needs no usage bookkeeping elsewhere.

// quotaResources are the limits a VM counts against.
var quotaResources = []string{"vcpus", "memory_mib", "vms"}

type quota struct {
	Limits map[string]int64 `json:"limits"`
}

// checkQuota refuses a VM that would take the project past a limit of its
// quota (409 QUOTA_EXCEEDED naming each limit); a project without a quota,
// or a PlasmaVMC without CreditService, has no limits.
func (s *Service) checkQuota(ctx context.Context, vm VM) error {
	if s.credits == nil {
		return nil
	}
	var q quota
	err := s.credits.call(ctx, "GET", "/api/v1/quotas/"+url.PathEscape(vm.ProjectID), nil, &q)
	if apierr.CodeOf(err) == apierr.CodeNotFound {
		return nil
	}
	if err != nil {
		return err
	}
	used := map[string]int64{}
	token := ""
	for {
		page, err := s.st.vms.List(ctx, vm.ProjectID+"/", 1000, token)
		if err != nil {
			return err
		}
		for _, it := range page.Items {
			used["vcpus"] += int64(it.Value.VCPUs)
			used["memory_mib"] += int64(it.Value.MemoryMiB)
			used["vms"]++
		}
		if token = page.NextPageToken; token == "" {
			break
		}
	}
	want := map[string]int64{"vcpus": int64(vm.VCPUs), "memory_mib": int64(vm.MemoryMiB), "vms": 1}
	var violations []map[string]any
	for _, r := range quotaResources {
		limit, ok := q.Limits[r]
		if ok && used[r]+want[r] > limit {
			violations = append(violations, map[string]any{"resource": r, "limit": limit, "used": used[r], "requested": want[r]})
		}
	}
	if len(violations) == 0 {
		return nil
	}
	sort.Slice(violations, func(i, j int) bool { return violations[i]["resource"].(string) < violations[j]["resource"].(string) })
	first := violations[0]
	return &apierr.Error{Code: apierr.CodeQuotaExceeded,
		Message: "the VM would take project " + vm.ProjectID + " past its " + first["resource"].(string) + " quota",
		Details: map[string]any{"limit": first["resource"], "violations": violations}}
}
