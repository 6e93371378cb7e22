// Package policy is PhotonCloud's authorization model: the IAM records every
// service reads (projects, roles, role bindings, revocations), the built-in
// roles, permission matching, and a watch-cache of IAM's keyspace in
// ChainFire that answers "may this subject do this here?" without a round
// trip to IAM. It knows nothing of HTTP; internal/auth puts it on requests.
package policy
