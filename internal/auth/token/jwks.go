package token

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/photoncloud/photon/internal/apierr"
)

// JWKS is the JSON Web Key Set document (RFC 7517, with RFC 8037's OKP keys)
// IAM publishes, so that any JOSE-aware tool, not just ours, can verify
// PhotonCloud tokens.
type JWKS struct {
	Keys []JWK `json:"keys"`
}

// JWK is one Ed25519 public key: kty "OKP", crv "Ed25519", x the raw 32-byte
// key in unpadded base64url.
type JWK struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Kid string `json:"kid"`
	Alg string `json:"alg,omitempty"`
	Use string `json:"use,omitempty"`
}

// NewJWKS returns the set for keys, sorted by kid so the document (and its
// ETag, if a server computes one) is stable.
func NewJWKS(keys map[string]ed25519.PublicKey) JWKS {
	s := JWKS{Keys: make([]JWK, 0, len(keys))}
	for kid, k := range keys {
		s.Keys = append(s.Keys, JWK{
			Kty: "OKP", Crv: "Ed25519", X: base64.RawURLEncoding.EncodeToString(k),
			Kid: kid, Alg: "EdDSA", Use: "sig",
		})
	}
	slices.SortFunc(s.Keys, func(a, b JWK) int { return strings.Compare(a.Kid, b.Kid) })
	return s
}

// PublicKeys returns the set's keys by kid. Any key it cannot use is an
// error rather than skipped: a half-understood key set would make tokens
// fail later with a misleading "unknown signing key".
func (s JWKS) PublicKeys() (map[string]ed25519.PublicKey, error) {
	out := make(map[string]ed25519.PublicKey, len(s.Keys))
	for i, k := range s.Keys {
		field := func(name string) string { return fmt.Sprintf("keys[%d].%s", i, name) }
		switch {
		case k.Kid == "":
			return nil, apierr.Validation(field("kid"), apierr.Required, "key id is required")
		case k.Kty != "OKP":
			return nil, apierr.Validation(field("kty"), apierr.Enum, "key type must be OKP")
		case k.Crv != "Ed25519":
			return nil, apierr.Validation(field("crv"), apierr.Enum, "curve must be Ed25519")
		case k.Alg != "" && k.Alg != "EdDSA":
			return nil, apierr.Validation(field("alg"), apierr.Enum, "algorithm must be EdDSA")
		case k.Use != "" && k.Use != "sig":
			return nil, apierr.Validation(field("use"), apierr.Enum, "use must be sig")
		}
		if _, dup := out[k.Kid]; dup {
			return nil, apierr.Validation(field("kid"), apierr.Format, "key id %q appears twice", k.Kid)
		}
		x, err := base64.RawURLEncoding.Strict().DecodeString(k.X)
		if err != nil || len(x) != ed25519.PublicKeySize {
			return nil, apierr.Validation(field("x"), apierr.Format, "x must be a 32-byte key in unpadded base64url")
		}
		out[k.Kid] = ed25519.PublicKey(x)
	}
	return out, nil
}

// Defaults of RemoteKeys.
const (
	DefaultMinRefresh = time.Second
	DefaultMaxAge     = 5 * time.Minute
	// fetchTimeout bounds one fetch even with a caller-supplied client
	// that has no timeout of its own.
	fetchTimeout = 10 * time.Second
	// maxJWKSBytes bounds the document: a key set is a few hundred bytes.
	maxJWKSBytes = 1 << 20
)

// RemoteKeys is a KeySource over IAM's JWKS endpoint (GET
// /api/v1/auth/jwks, whose body is the seed's envelope {"data": JWKS,
// "meta": …}). It caches the set and refetches lazily — no background
// goroutine — when a kid is unknown (IAM has rotated) or the set is older
// than MaxAge. Fetches happen at most once per MinRefresh and concurrent
// misses share one fetch, so a flood of tokens with random kids costs IAM
// one request per MinRefresh, not one per token.
//
// When a fetch fails, keys already known stay usable (IAM being briefly
// down must not log everyone out); an unknown kid then gets the fetch's
// UNAVAILABLE error. IAM should publish a new key before signing with it:
// a token whose kid appeared less than MinRefresh after the last fetch is
// refused until the next one.
type RemoteKeys struct {
	// MinRefresh is the least time between two fetches (0: 1s). Set it
	// before first use.
	MinRefresh time.Duration
	// MaxAge is how long a fetched set is trusted without refetching
	// (0: 5m). Set it before first use.
	MaxAge time.Duration

	url    string
	client *http.Client
	now    func() time.Time

	set atomic.Pointer[keySet] // the last good set; nil before one

	mu        sync.Mutex
	inflight  *fetchCall // the fetch under way, shared by all who miss
	lastFetch time.Time  // when the last fetch ended, for MinRefresh
	lastErr   error      // the last fetch's error; nil after a success
}

type keySet struct {
	keys    map[string]ed25519.PublicKey
	fetched time.Time
}

type fetchCall struct {
	done chan struct{}
	set  *keySet
	err  error
}

// NewRemoteKeys returns a KeySource for the JWKS envelope at url. A nil
// client means one with a 5s timeout.
func NewRemoteKeys(url string, client *http.Client) *RemoteKeys {
	if client == nil {
		client = &http.Client{Timeout: 5 * time.Second}
	}
	return &RemoteKeys{url: url, client: client, now: time.Now}
}

func (r *RemoteKeys) minRefresh() time.Duration {
	if r.MinRefresh > 0 {
		return r.MinRefresh
	}
	return DefaultMinRefresh
}

func (r *RemoteKeys) maxAge() time.Duration {
	if r.MaxAge > 0 {
		return r.MaxAge
	}
	return DefaultMaxAge
}

// PublicKey returns the key for kid, fetching the set if it is missing,
// stale, or lacks kid (subject to MinRefresh).
func (r *RemoteKeys) PublicKey(ctx context.Context, kid string) (ed25519.PublicKey, error) {
	set := r.set.Load()
	if set != nil && r.now().Sub(set.fetched) < r.maxAge() {
		if k, ok := set.keys[kid]; ok {
			return k, nil
		}
	}
	fresh, err := r.refresh(ctx)
	if fresh != nil {
		set = fresh
	}
	if set != nil {
		if k, ok := set.keys[kid]; ok {
			return k, nil
		}
	}
	if err != nil {
		return nil, err
	}
	return nil, errUnknownKey()
}

// refresh fetches the set unless a fetch ended less than MinRefresh ago,
// joining one already under way. It returns the newest set it knows (nil if
// none) and the error of the fetch that produced its answer.
func (r *RemoteKeys) refresh(ctx context.Context) (*keySet, error) {
	r.mu.Lock()
	if c := r.inflight; c != nil {
		r.mu.Unlock()
		select {
		case <-c.done:
			return c.set, c.err
		case <-ctx.Done():
			return r.set.Load(), apierr.Wrap(apierr.CodeUnavailable, ctx.Err(), "signing keys unavailable")
		}
	}
	if !r.lastFetch.IsZero() && r.now().Sub(r.lastFetch) < r.minRefresh() {
		set, err := r.set.Load(), r.lastErr
		r.mu.Unlock()
		return set, err
	}
	c := &fetchCall{done: make(chan struct{})}
	r.inflight = c
	r.mu.Unlock()

	set, err := r.fetch(ctx)

	r.mu.Lock()
	r.lastFetch, r.lastErr = r.now(), err
	if err == nil {
		r.set.Store(set)
	} else {
		set = r.set.Load()
	}
	c.set, c.err = set, err
	r.inflight = nil
	r.mu.Unlock()
	close(c.done)
	return set, err
}

// fetch GETs and decodes the set. It runs on behalf of every caller waiting
// on it, so it ignores the first caller's cancellation (bounded instead by
// fetchTimeout and the client's own timeout).
func (r *RemoteKeys) fetch(ctx context.Context) (*keySet, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fetchTimeout)
	defer cancel()
	unavailable := func(err error) error {
		return apierr.Wrap(apierr.CodeUnavailable, err, "signing keys unavailable")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url, nil)
	if err != nil {
		return nil, unavailable(err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, unavailable(err)
	}
	defer resp.Body.Close()
	body := io.LimitReader(resp.Body, maxJWKSBytes)
	defer io.Copy(io.Discard, body) //nolint:errcheck // drained only for connection reuse
	if resp.StatusCode != http.StatusOK {
		return nil, unavailable(fmt.Errorf("GET JWKS: status %d", resp.StatusCode))
	}
	var env struct {
		Data *JWKS `json:"data"`
	}
	if err := json.NewDecoder(body).Decode(&env); err != nil {
		return nil, unavailable(fmt.Errorf("decoding JWKS: %w", err))
	}
	if env.Data == nil {
		return nil, unavailable(fmt.Errorf("decoding JWKS: no data"))
	}
	keys, err := env.Data.PublicKeys()
	if err != nil {
		return nil, unavailable(fmt.Errorf("JWKS: %w", err))
	}
	return &keySet{keys: keys, fetched: r.now()}, nil
}
