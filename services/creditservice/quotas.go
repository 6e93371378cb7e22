package creditservice

import (
	"context"
	"sort"
	"time"

	"github.com/photoncloud/photon/internal/apierr"
	"github.com/photoncloud/photon/internal/auth"
	"github.com/photoncloud/photon/internal/auth/policy"
	"github.com/photoncloud/photon/internal/state"
)

// Quota is a project's limits on what it may hold (vcpus, memory_mib, vms,
// disk_gb, storage_bytes, …) and what it holds now. A resource without a
// limit is unlimited.
type Quota struct {
	ProjectID string           `json:"project_id"`
	OrgID     string           `json:"org_id,omitempty"`
	Limits    map[string]int64 `json:"limits"`
	Usage     map[string]int64 `json:"usage"`
	UpdatedAt time.Time        `json:"updated_at,omitzero"`
}

// SetQuotaRequest is the body of PUT /api/v1/quotas/{project_id}: the
// limits replace the old ones.
type SetQuotaRequest struct {
	OrgID  string           `json:"org_id"`
	Limits map[string]int64 `json:"limits"`
}

// QuotaRequest is the body of the check and usage routes: how much of each
// resource a change asks for (usage: negative frees).
type QuotaRequest struct {
	Resources map[string]int64 `json:"resources"`
}

// QuotaCheck answers whether a request fits, and if not, where not.
type QuotaCheck struct {
	Allowed    bool             `json:"allowed"`
	Violations []QuotaViolation `json:"violations"`
}

// QuotaViolation is one resource a request would take past its limit.
type QuotaViolation struct {
	Resource  string `json:"resource"`
	Limit     int64  `json:"limit"`
	Usage     int64  `json:"usage"`
	Requested int64  `json:"requested"`
}

const maxResources = 64

func validResources(field string, m map[string]int64, allowNegative bool) error {
	if len(m) > maxResources {
		return apierr.Validation(field, apierr.MaxLength, "%s may name at most %d resources", field, maxResources)
	}
	for name, v := range m {
		if len(name) == 0 || len(name) > 32 {
			return apierr.Validation(field, apierr.Format, "resource name %q must be 1 to 32 characters", name)
		}
		for i := 0; i < len(name); i++ {
			if c := name[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
				return apierr.Validation(field, apierr.Format, "resource name %q must be lower-case letters, digits or _", name)
			}
		}
		if v > MaxAmount || v < -MaxAmount || (!allowNegative && v < 0) {
			return &apierr.Error{Code: apierr.CodeValidation, Message: "the amount of " + name + " is out of range",
				Details: map[string]any{"field": field + "." + name, "constraint": string(apierr.Range)}}
		}
	}
	return nil
}

// quotaTarget is where project's quota lives for authorization.
func quotaTarget(q Quota) policy.Target { return policy.Target{OrgID: q.OrgID, ProjectID: q.ProjectID} }

// getQuota reads project's quota; a project without one has no limits.
func (s *Service) getQuota(ctx context.Context, project string) (state.Item[Quota], error) {
	it, err := s.st.quotas.Get(ctx, project)
	if apierr.CodeOf(err) == apierr.CodeNotFound {
		return state.Item[Quota]{ID: project, Value: Quota{ProjectID: project, Limits: map[string]int64{}, Usage: map[string]int64{}}}, nil
	}
	if it.Value.Limits == nil {
		it.Value.Limits = map[string]int64{}
	}
	if it.Value.Usage == nil {
		it.Value.Usage = map[string]int64{}
	}
	return it, err
}

// GetQuota returns a project's limits and usage.
func (s *Service) GetQuota(ctx context.Context, project string) (Quota, error) {
	if err := validID("project_id", project, true); err != nil {
		return Quota{}, err
	}
	it, err := s.getQuota(ctx, project)
	if err != nil {
		return Quota{}, err
	}
	if err := auth.RequireOn(ctx, permQuotasGet, quotaTarget(it.Value), "quota", project); err != nil {
		return Quota{}, err
	}
	return it.Value, nil
}

// SetQuota replaces a project's limits (admin only); usage is kept, even
// above a lowered limit (nothing is taken away; new requests are refused).
func (s *Service) SetQuota(ctx context.Context, project string, req SetQuotaRequest) (Quota, error) {
	if err := firstErr(validID("project_id", project, true), validID("org_id", req.OrgID, false), validResources("limits", req.Limits, false)); err != nil {
		return Quota{}, err
	}
	for attempt := 0; attempt < maxAttempts; attempt++ {
		it, err := s.getQuota(ctx, project)
		if err != nil {
			return Quota{}, err
		}
		q := it.Value
		if req.OrgID != "" {
			q.OrgID = req.OrgID
		}
		if err := auth.Require(ctx, permQuotasUpdate, quotaTarget(q)); err != nil {
			return Quota{}, err
		}
		q.Limits = req.Limits
		if q.Limits == nil {
			q.Limits = map[string]int64{}
		}
		q.UpdatedAt = s.now().UTC()
		err = s.putQuota(ctx, it, q)
		if apierr.CodeOf(err) == apierr.CodeConflict || apierr.CodeOf(err) == apierr.CodeAlreadyExists {
			continue
		}
		return q, err
	}
	return Quota{}, apierr.New(apierr.CodeUnavailable, "quota %s is changing too fast; retry", project)
}

func (s *Service) putQuota(ctx context.Context, old state.Item[Quota], q Quota) error {
	if old.ModRevision == 0 {
		_, err := s.st.quotas.Create(ctx, q.ProjectID, q)
		return err
	}
	_, err := s.st.quotas.Update(ctx, q.ProjectID, q, old.ModRevision)
	return err
}

// check lists where usage + req would pass a limit.
func check(q Quota, req map[string]int64) QuotaCheck {
	out := QuotaCheck{Allowed: true, Violations: []QuotaViolation{}}
	for name, n := range req {
		limit, limited := q.Limits[name]
		if limited && n > 0 && q.Usage[name]+n > limit {
			out.Allowed = false
			out.Violations = append(out.Violations, QuotaViolation{Resource: name, Limit: limit, Usage: q.Usage[name], Requested: n})
		}
	}
	sort.Slice(out.Violations, func(i, j int) bool { return out.Violations[i].Resource < out.Violations[j].Resource })
	return out
}

// CheckQuota answers whether a project could take req now, changing
// nothing: what other services ask before creating things.
func (s *Service) CheckQuota(ctx context.Context, project string, req QuotaRequest) (QuotaCheck, error) {
	if err := firstErr(validID("project_id", project, true), validResources("resources", req.Resources, false)); err != nil {
		return QuotaCheck{}, err
	}
	it, err := s.getQuota(ctx, project)
	if err != nil {
		return QuotaCheck{}, err
	}
	if err := auth.RequireOn(ctx, permQuotasCheck, quotaTarget(it.Value), "quota", project); err != nil {
		return QuotaCheck{}, err
	}
	return check(it.Value, req.Resources), nil
}

// AddUsage applies usage deltas atomically: positive ones must fit their
// limits (else 409 QUOTA_EXCEEDED and nothing changes), negative ones free
// (never below zero). Services record what they create and delete with it.
func (s *Service) AddUsage(ctx context.Context, project string, req QuotaRequest) (Quota, error) {
	if err := firstErr(validID("project_id", project, true), validResources("resources", req.Resources, true)); err != nil {
		return Quota{}, err
	}
	for attempt := 0; attempt < maxAttempts; attempt++ {
		it, err := s.getQuota(ctx, project)
		if err != nil {
			return Quota{}, err
		}
		q := it.Value
		if err := auth.Require(ctx, permQuotasUpdate, quotaTarget(q)); err != nil {
			return Quota{}, err
		}
		if c := check(q, req.Resources); !c.Allowed {
			return Quota{}, &apierr.Error{Code: apierr.CodeQuotaExceeded, Message: "the request exceeds the project's quota",
				Details: map[string]any{"project_id": project, "violations": c.Violations}}
		}
		usage := make(map[string]int64, len(q.Usage))
		for k, v := range q.Usage {
			usage[k] = v
		}
		for name, n := range req.Resources {
			if usage[name]+n > MaxAmount {
				return Quota{}, &apierr.Error{Code: apierr.CodeValidation, Message: "usage of " + name + " would exceed 10^15",
					Details: map[string]any{"field": "resources." + name, "constraint": string(apierr.Range), "usage": q.Usage[name]}}
			}
			usage[name] += n
			if usage[name] < 0 {
				return Quota{}, &apierr.Error{Code: apierr.CodeValidation, Message: "usage of " + name + " cannot go below zero",
					Details: map[string]any{"field": "resources." + name, "constraint": string(apierr.Range), "usage": q.Usage[name]}}
			}
			if usage[name] == 0 {
				delete(usage, name)
			}
		}
		q.Usage, q.UpdatedAt = usage, s.now().UTC()
		err = s.putQuota(ctx, it, q)
		if apierr.CodeOf(err) == apierr.CodeConflict || apierr.CodeOf(err) == apierr.CodeAlreadyExists {
			continue
		}
		return q, err
	}
	return Quota{}, apierr.New(apierr.CodeUnavailable, "quota %s is changing too fast; retry", project)
}
