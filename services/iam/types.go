package iam

import (
	"time"

	"github.com/photoncloud/photon/internal/auth/policy"
)

// Resources are the records of internal/auth/policy: IAM writes what every
// service's cache reads.
type (
	// Org is an organization.
	Org = policy.Org
	// Project belongs to one org.
	Project = policy.Project
	// Principal is a user or service account.
	Principal = policy.Principal
	// Role is a named list of permission rules.
	Role = policy.Role
	// Binding grants a role to a principal at a scope.
	Binding = policy.Binding
)

// CreateOrgRequest is the body of POST /api/v1/orgs; ID is generated when empty.
type CreateOrgRequest struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description"`
}

// UpdateOrgRequest is the body of PATCH /api/v1/orgs/{id}: fields present change.
type UpdateOrgRequest struct {
	Name        *string `json:"name"`
	Description *string `json:"description"`
}

// CreateProjectRequest is the body of POST /api/v1/projects.
type CreateProjectRequest struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	OrgID       string `json:"org_id"`
	Description string `json:"description"`
}

// UpdateProjectRequest is the body of PATCH /api/v1/projects/{id}. A
// project never moves between orgs.
type UpdateProjectRequest struct {
	Name        *string `json:"name"`
	Description *string `json:"description"`
}

// CreatePrincipalRequest is the body of POST /api/v1/users. Password is
// optional, write-only, and only for users.
type CreatePrincipalRequest struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Email    string `json:"email"`
	Type     string `json:"type"`
	Password string `json:"password"`
}

// UpdatePrincipalRequest is the body of PATCH /api/v1/users/{id}.
type UpdatePrincipalRequest struct {
	Name     *string `json:"name"`
	Email    *string `json:"email"`
	Password *string `json:"password"`
}

// CreateRoleRequest is the body of POST /api/v1/roles.
type CreateRoleRequest struct {
	Name        string   `json:"name"`
	Description string   `json:"description"`
	Permissions []string `json:"permissions"`
}

// UpdateRoleRequest is the body of PATCH /api/v1/roles/{name}.
type UpdateRoleRequest struct {
	Description *string   `json:"description"`
	Permissions *[]string `json:"permissions"`
}

// CreateBindingRequest is the body of POST /api/v1/bindings.
type CreateBindingRequest struct {
	PrincipalID string `json:"principal_id"`
	Role        string `json:"role"`
	ScopeID     string `json:"scope_id"`
}

// Credential is an access key of a principal in a project (S3 signs with
// it). Its secret is returned once, by create.
type Credential struct {
	AccessKeyID     string    `json:"access_key_id"`
	PrincipalID     string    `json:"principal_id"`
	ProjectID       string    `json:"project_id"`
	Description     string    `json:"description,omitempty"`
	SecretAccessKey string    `json:"secret_access_key,omitempty"`
	CreatedAt       time.Time `json:"created_at"`
}

// CreateCredentialRequest is the body of POST /api/v1/credentials.
type CreateCredentialRequest struct {
	PrincipalID string `json:"principal_id"`
	ProjectID   string `json:"project_id"`
	Description string `json:"description"`
}

// IssueTokenRequest is the body of POST /api/v1/auth/token: either the
// principal proves itself with an access key, or the caller, holding admin
// over the scope, delegates (the seed's Example 3).
type IssueTokenRequest struct {
	PrincipalID     string   `json:"principal_id"`
	PrincipalType   string   `json:"principal_type"`
	ScopeID         string   `json:"scope_id"`
	TTLSeconds      *int64   `json:"ttl_seconds"`
	Roles           []string `json:"roles"`
	AccessKeyID     string   `json:"access_key_id"`
	SecretAccessKey string   `json:"secret_access_key"`
}

// LoginRequest is the body of POST /api/v1/auth/login.
type LoginRequest struct {
	PrincipalID string `json:"principal_id"`
	Password    string `json:"password"`
	ScopeID     string `json:"scope_id"`
	TTLSeconds  *int64 `json:"ttl_seconds"`
}

// IssuedToken is a new token.
type IssuedToken struct {
	Token       string    `json:"token"`
	TokenID     string    `json:"token_id"`
	PrincipalID string    `json:"principal_id"`
	ScopeID     string    `json:"scope_id"`
	Roles       []string  `json:"roles"`
	IssuedBy    string    `json:"issued_by"`
	ExpiresAt   time.Time `json:"expires_at"`
}

// VerifyRequest is the body of POST /api/v1/auth/verify.
type VerifyRequest struct {
	Token string `json:"token"`
}

// Verification is what verify learns of a token. An invalid token is an
// answer (valid: false, with the reason), not an error.
type Verification struct {
	Valid          bool       `json:"valid"`
	Reason         string     `json:"reason,omitempty"`
	TokenID        string     `json:"token_id,omitempty"`
	PrincipalID    string     `json:"principal_id,omitempty"`
	PrincipalType  string     `json:"principal_type,omitempty"`
	ScopeID        string     `json:"scope_id,omitempty"`
	Roles          []string   `json:"roles,omitempty"`
	EffectiveRoles []string   `json:"effective_roles,omitempty"`
	IssuedBy       string     `json:"issued_by,omitempty"`
	Delegated      bool       `json:"delegated,omitempty"`
	IssuedAt       *time.Time `json:"issued_at,omitempty"`
	ExpiresAt      *time.Time `json:"expires_at,omitempty"`
}

// RevokeRequest is the body of POST /api/v1/auth/revoke: one token (its
// holder or an admin over its scope may), or every token of a principal
// (the principal itself or a system admin may).
type RevokeRequest struct {
	Token       string `json:"token"`
	PrincipalID string `json:"principal_id"`
}

// Revocation is the answer to a revoke.
type Revocation struct {
	Revoked     bool      `json:"revoked"`
	TokenID     string    `json:"token_id,omitempty"`
	PrincipalID string    `json:"principal_id,omitempty"`
	Before      time.Time `json:"before,omitzero"`
}

// CheckRequest is the body of POST /api/v1/authz/check: may the caller (or
// the holder of Token) do Permission on a resource of OrgID/ProjectID?
type CheckRequest struct {
	Token      string `json:"token"`
	Permission string `json:"permission"`
	OrgID      string `json:"org_id"`
	ProjectID  string `json:"project_id"`
}

// CheckResult answers a check. Decision is allow, denied or out_of_scope.
type CheckResult struct {
	Allowed     bool   `json:"allowed"`
	Decision    string `json:"decision"`
	PrincipalID string `json:"principal_id"`
	ScopeID     string `json:"scope_id"`
	Permission  string `json:"permission"`
}

// Lists.
type (
	// OrgList is a page of orgs.
	OrgList struct {
		Orgs          []Org  `json:"orgs"`
		NextPageToken string `json:"next_page_token,omitempty"`
	}
	// ProjectList is a page of projects.
	ProjectList struct {
		Projects      []Project `json:"projects"`
		NextPageToken string    `json:"next_page_token,omitempty"`
	}
	// UserList is a page of principals (the seed's "users").
	UserList struct {
		Users         []Principal `json:"users"`
		NextPageToken string      `json:"next_page_token,omitempty"`
	}
	// RoleList is every role.
	RoleList struct {
		Roles []Role `json:"roles"`
	}
	// BindingList is a page of bindings.
	BindingList struct {
		Bindings []Binding `json:"bindings"`
	}
	// CredentialList lists credentials, never their secrets.
	CredentialList struct {
		Credentials []Credential `json:"credentials"`
	}
	// SigningKeyList lists the published keys' ids and lifetimes.
	SigningKeyList struct {
		Keys []SigningKeyInfo `json:"keys"`
	}
)

// SigningKeyInfo is a signing key without its private half.
type SigningKeyInfo struct {
	ID          string    `json:"kid"`
	CreatedAt   time.Time `json:"created_at"`
	ActiveUntil time.Time `json:"active_until"`
	RetireAt    time.Time `json:"retire_at"`
}
