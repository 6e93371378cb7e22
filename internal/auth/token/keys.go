package token

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"

	"github.com/photoncloud/photon/internal/apierr"
)

// SigningKey is one Ed25519 key with its key id. The id travels in every
// token's "kid" header so verifiers can pick the right public key while IAM
// rotates keys.
type SigningKey struct {
	ID      string
	Private ed25519.PrivateKey
}

// GenerateKey returns a fresh key from crypto/rand with id kid.
func GenerateKey(kid string) (SigningKey, error) {
	if kid == "" {
		return SigningKey{}, apierr.Validation("kid", apierr.Required, "key id is required")
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return SigningKey{}, apierr.Wrap(apierr.CodeInternal, err, "generating signing key")
	}
	return SigningKey{ID: kid, Private: priv}, nil
}

// Public is the key's public half, the part published in the JWKS.
func (k SigningKey) Public() ed25519.PublicKey {
	if len(k.Private) != ed25519.PrivateKeySize {
		return nil
	}
	return k.Private.Public().(ed25519.PublicKey)
}

// KeySource finds the public key for a kid. Implementations return an
// apierr UNAUTHENTICATED "unknown signing key" error when the kid is unknown,
// and an UNAVAILABLE error when the keys cannot be fetched at all, so that a
// caller answers 401 for a bad token but 503 when IAM is unreachable.
type KeySource interface {
	PublicKey(ctx context.Context, kid string) (ed25519.PublicKey, error)
}

// StaticKeys is a KeySource over a fixed map: tests, and IAM verifying its
// own tokens without fetching its own JWKS.
type StaticKeys map[string]ed25519.PublicKey

var (
	_ KeySource = StaticKeys(nil)
	_ KeySource = (*RemoteKeys)(nil)
)

// PublicKey returns the key for kid or UNAUTHENTICATED "unknown signing key".
func (s StaticKeys) PublicKey(_ context.Context, kid string) (ed25519.PublicKey, error) {
	if k, ok := s[kid]; ok {
		return k, nil
	}
	return nil, errUnknownKey()
}

func errUnknownKey() error { return unauthenticated("unknown signing key") }

// unauthenticated builds a fresh error each time: callers may add details
// to the error they get, so a shared value would leak between requests.
func unauthenticated(msg string) *apierr.Error {
	return &apierr.Error{Code: apierr.CodeUnauthenticated, Message: msg}
}
