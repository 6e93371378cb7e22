package iam

import (
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/photoncloud/photon/internal/auth/policy"
	"github.com/photoncloud/photon/internal/state"
)

// Where IAM keeps what only it reads: secrets under policy.SecretsPrefix
// (never in any service's cache) and indexes that let one transaction
// refuse to delete a parent that still has children.
const (
	passwordsPrefix   = policy.SecretsPrefix + "passwords/"
	credentialsPrefix = policy.CredentialsPrefix
	signingKeysPrefix = policy.SecretsPrefix + "signing-keys/"
	indexPrefix       = "/photon/iam-index/"
	orgProjectsPrefix = indexPrefix + "org-projects/" // <org>/<project>
)

// passwordRecord is a user's password hash.
type passwordRecord struct {
	Hash      string    `json:"hash"`
	UpdatedAt time.Time `json:"updated_at"`
}

// storedCredential is a credential with its secret: S3 needs the secret
// itself to check SigV4 signatures, so it is kept, not hashed.
type storedCredential struct {
	Credential
	Secret string `json:"secret"`
}

// indexEntry marks a child under its parent's index prefix.
type indexEntry struct{}

// store is IAM's typed collections.
type store struct {
	cli               *clientv3.Client
	orgs              *state.Collection[Org]
	projects          *state.Collection[Project]
	principals        *state.Collection[Principal]
	roles             *state.Collection[Role]
	bindings          *state.Collection[Binding]
	revokedTokens     *state.Collection[policy.RevokedToken]
	revokedPrincipals *state.Collection[policy.RevokedPrincipal]
	passwords         *state.Collection[passwordRecord]
	credentials       *state.Collection[storedCredential]
	signingKeys       *state.Collection[storedKey]
	orgProjects       *state.Collection[indexEntry]
}

func newStore(cli *clientv3.Client) *store {
	return &store{
		cli:               cli,
		orgs:              state.NewCollection[Org](cli, policy.OrgsPrefix, "org"),
		projects:          state.NewCollection[Project](cli, policy.ProjectsPrefix, "project"),
		principals:        state.NewCollection[Principal](cli, policy.PrincipalsPrefix, "user"),
		roles:             state.NewCollection[Role](cli, policy.RolesPrefix, "role"),
		bindings:          state.NewCollection[Binding](cli, policy.BindingsPrefix, "binding"),
		revokedTokens:     state.NewCollection[policy.RevokedToken](cli, policy.RevokedTokensPrefix, "revoked token"),
		revokedPrincipals: state.NewCollection[policy.RevokedPrincipal](cli, policy.RevokedPrincipalsPrefix, "revoked principal"),
		passwords:         state.NewCollection[passwordRecord](cli, passwordsPrefix, "password"),
		credentials:       state.NewCollection[storedCredential](cli, credentialsPrefix, "credential"),
		signingKeys:       state.NewCollection[storedKey](cli, signingKeysPrefix, "signing key"),
		orgProjects:       state.NewCollection[indexEntry](cli, orgProjectsPrefix, "project of org"),
	}
}
