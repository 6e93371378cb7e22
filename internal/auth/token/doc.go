// Package token is the JWT layer of PhotonCloud's IAM: IAM signs short-lived
// Ed25519 tokens (JWS "EdDSA" with a kid) and publishes its public keys as a
// JWKS, so every other service verifies tokens locally, without a round trip
// to IAM on each request.
package token
