package auth

import (
	"context"
	"encoding/json"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/photoncloud/photon/internal/apierr"
	"github.com/photoncloud/photon/internal/auth/policy"
	"github.com/photoncloud/photon/internal/state"
)

// AccessKey is an IAM credential as a service that checks request
// signatures with it (S3's SigV4) needs it: the secret itself, and whose
// key it is where.
type AccessKey struct {
	ID          string `json:"access_key_id"`
	PrincipalID string `json:"principal_id"`
	ProjectID   string `json:"project_id"`
	Secret      string `json:"secret"`
}

// LookupAccessKey reads an access key from IAM's secrets (NOT_FOUND when
// there is none: revoked, or never issued).
func LookupAccessKey(ctx context.Context, cli *clientv3.Client, id string) (AccessKey, error) {
	resp, err := cli.Get(ctx, policy.CredentialsPrefix+id)
	if err != nil {
		return AccessKey{}, state.FromEtcd(err)
	}
	if len(resp.Kvs) == 0 {
		return AccessKey{}, apierr.NotFound("access key", id)
	}
	var k AccessKey
	if err := json.Unmarshal(resp.Kvs[0].Value, &k); err != nil || k.Secret == "" {
		return AccessKey{}, apierr.New(apierr.CodeInternal, "access key %s is unreadable", id)
	}
	return k, nil
}

// KeySubject is the caller an access key stands for: its principal, at its
// project, with exactly the roles the principal holds there now (as IAM
// gives a token issued for the key).
func (a *Authenticator) KeySubject(k AccessKey) *policy.Subject {
	return &policy.Subject{PrincipalID: k.PrincipalID, Scope: k.ProjectID, IssuedBy: k.PrincipalID,
		Roles: a.cache.LiveRoles(k.PrincipalID, k.ProjectID)}
}

// WithKeySubject attaches the access key's subject to ctx, for Require
// and RequireOn.
func (a *Authenticator) WithKeySubject(ctx context.Context, k AccessKey) context.Context {
	return WithSubject(ctx, a, a.KeySubject(k))
}
