package policy

import "time"

// The keyspace IAM writes and every service's cache reads. Secrets (signing
// keys, password hashes, credential secrets) live under SecretsPrefix, which
// the cache never watches, so they are held only by IAM.
const (
	Prefix                  = "/photon/iam/"
	OrgsPrefix              = Prefix + "orgs/"
	ProjectsPrefix          = Prefix + "projects/"
	PrincipalsPrefix        = Prefix + "principals/"
	RolesPrefix             = Prefix + "roles/"
	BindingsPrefix          = Prefix + "bindings/"
	RevokedTokensPrefix     = Prefix + "revoked/tokens/"
	RevokedPrincipalsPrefix = Prefix + "revoked/principals/"

	SecretsPrefix = "/photon/iam-secrets/"
	// CredentialsPrefix holds access keys with their secrets (S3 checks
	// signatures with the secret itself): <access key id> → the key.
	CredentialsPrefix = SecretsPrefix + "credentials/"
)

// SystemScope is the scope above every org and project.
const SystemScope = "system"

// Principal types.
const (
	TypeUser           = "user"
	TypeServiceAccount = "service_account"
)

// BootstrapAdmin is the service account that holds admin at system scope
// from the first start: the loopback-trust caller and DATA/admin.token act
// as it.
const BootstrapAdmin = "photon-admin"

// Org is an organization: the owner of projects.
type Org struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Description string    `json:"description,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// Project belongs to exactly one org; resources of every service carry its id.
type Project struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	OrgID       string    `json:"org_id"`
	Description string    `json:"description,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// Principal is a user or a service account. Its password hash, if any, is
// stored apart, under SecretsPrefix.
type Principal struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Email     string    `json:"email,omitempty"`
	Type      string    `json:"type"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Role is a named list of permission rules (see Rules).
type Role struct {
	Name        string    `json:"name"`
	Description string    `json:"description,omitempty"`
	Permissions []string  `json:"permissions"`
	Builtin     bool      `json:"builtin"`
	CreatedAt   time.Time `json:"created_at,omitzero"`
	UpdatedAt   time.Time `json:"updated_at,omitzero"`
}

// Binding grants Role to PrincipalID at Scope (system, an org or a
// project); a binding at an org applies to the org's projects.
type Binding struct {
	ID          string    `json:"id"`
	PrincipalID string    `json:"principal_id"`
	Role        string    `json:"role"`
	Scope       string    `json:"scope_id"`
	CreatedAt   time.Time `json:"created_at"`
}

// RevokedToken marks one token (by jti) revoked until it would have expired;
// it is stored on a lease that ends then, so the list cleans itself.
type RevokedToken struct {
	ID        string    `json:"jti"`
	ExpiresAt time.Time `json:"expires_at"`
}

// RevokedPrincipal revokes every token of PrincipalID — issued to it or by
// it — issued at or before Before (whole seconds, as tokens' iat).
type RevokedPrincipal struct {
	PrincipalID string    `json:"principal_id"`
	Before      time.Time `json:"before"`
}
