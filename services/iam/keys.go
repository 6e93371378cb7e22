package iam

import (
	"context"
	"crypto/ed25519"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/photoncloud/photon/internal/apierr"
	"github.com/photoncloud/photon/internal/auth/token"
	"github.com/photoncloud/photon/internal/ids"
	"github.com/photoncloud/photon/internal/state"
)

// storedKey is a signing key in ChainFire. Every replica signs with the
// newest active key and publishes every key not yet retired: a key signs
// until ActiveUntil and is published until RetireAt, when the last token it
// signed has expired.
type storedKey struct {
	ID          string    `json:"kid"`
	Seed        []byte    `json:"seed"` // the Ed25519 private key seed
	CreatedAt   time.Time `json:"created_at"`
	ActiveUntil time.Time `json:"active_until"`
	RetireAt    time.Time `json:"retire_at"`
}

func (k storedKey) info() SigningKeyInfo {
	return SigningKeyInfo{ID: k.ID, CreatedAt: k.CreatedAt, ActiveUntil: k.ActiveUntil, RetireAt: k.RetireAt}
}

// keyring holds the signing keys and rotates them.
type keyring struct {
	coll     *state.Collection[storedKey]
	rotation time.Duration
	maxTTL   time.Duration
	now      func() time.Time
	log      *slog.Logger

	mu          sync.RWMutex
	keys        []state.Item[storedKey] // sorted by CreatedAt
	private     map[string]ed25519.PrivateKey
	lastRefresh time.Time
}

// publishDelay is how long a scheduled successor key is published before it
// signs, so that verifiers which fetched the JWKS just before it appeared
// (they refetch on an unknown kid at most once a second) know it by then.
const publishDelay = 5 * time.Second

// refresh reloads the keys, deletes retired ones and makes sure one is
// active, creating it if not.
func (k *keyring) refresh(ctx context.Context) error {
	page, err := k.coll.List(ctx, "", 1000, "")
	if err != nil {
		return err
	}
	now := k.now()
	var live []state.Item[storedKey]
	active := false
	for _, it := range page.Items {
		if !it.Value.RetireAt.After(now) {
			// Every token it signed has expired; another replica may have
			// removed it first.
			if err := k.coll.Delete(ctx, it.ID, it.ModRevision); err != nil && apierr.CodeOf(err) != apierr.CodeNotFound && apierr.CodeOf(err) != apierr.CodeConflict {
				return err
			}
			continue
		}
		live = append(live, it)
		// A successor is made a little before the key's end, so that
		// signing never waits for one.
		active = active || it.Value.ActiveUntil.After(now.Add(k.rotation/10))
	}
	if !active {
		it, err := k.create(ctx, now)
		if err != nil {
			return err
		}
		live = append(live, it)
	}
	slices.SortFunc(live, func(a, b state.Item[storedKey]) int { return a.Value.CreatedAt.Compare(b.Value.CreatedAt) })
	private := make(map[string]ed25519.PrivateKey, len(live))
	for _, it := range live {
		private[it.ID] = ed25519.NewKeyFromSeed(it.Value.Seed)
	}
	k.mu.Lock()
	k.keys, k.private, k.lastRefresh = live, private, now
	k.mu.Unlock()
	return nil
}

func (k *keyring) create(ctx context.Context, now time.Time) (state.Item[storedKey], error) {
	sk, err := token.GenerateKey(ids.New("key"))
	if err != nil {
		return state.Item[storedKey]{}, apierr.Wrap(apierr.CodeInternal, err, "generating a signing key")
	}
	v := storedKey{ID: sk.ID, Seed: sk.Private.Seed(), CreatedAt: now, ActiveUntil: now.Add(k.rotation),
		RetireAt: now.Add(k.rotation + k.maxTTL + time.Minute)}
	it, err := k.coll.Create(ctx, v.ID, v)
	if err == nil {
		k.log.Info("iam: new signing key", "kid", v.ID, "active_until", v.ActiveUntil)
	}
	return it, err
}

// rotate ends the active keys' signing now and creates a new key.
func (k *keyring) rotate(ctx context.Context) (SigningKeyInfo, error) {
	if err := k.refresh(ctx); err != nil {
		return SigningKeyInfo{}, err
	}
	now := k.now()
	k.mu.RLock()
	current := slices.Clone(k.keys)
	k.mu.RUnlock()
	for _, it := range current {
		if it.Value.ActiveUntil.After(now) {
			v := it.Value
			v.ActiveUntil = now
			if _, err := k.coll.Update(ctx, it.ID, v, it.ModRevision); err != nil {
				return SigningKeyInfo{}, err
			}
		}
	}
	if err := k.refresh(ctx); err != nil {
		return SigningKeyInfo{}, err
	}
	keys := k.list()
	return keys[len(keys)-1], nil
}

// signer is the newest key that is still active, refreshing the keyring if
// none is (the background refresh fell behind).
func (k *keyring) signer(ctx context.Context) (token.SigningKey, error) {
	if sk, ok := k.active(); ok {
		return sk, nil
	}
	if err := k.refresh(ctx); err != nil {
		return token.SigningKey{}, err
	}
	if sk, ok := k.active(); ok {
		return sk, nil
	}
	return token.SigningKey{}, apierr.New(apierr.CodeUnavailable, "no active signing key")
}

// active picks the newest active key that has been published for
// publishDelay, else the newest active key (the first key, or the one a
// manual rotation — an emergency — switched to at once).
func (k *keyring) active() (token.SigningKey, bool) {
	now := k.now()
	k.mu.RLock()
	defer k.mu.RUnlock()
	newest := -1
	for i := len(k.keys) - 1; i >= 0; i-- {
		v := k.keys[i].Value
		if !v.ActiveUntil.After(now) {
			continue
		}
		if newest < 0 {
			newest = i
		}
		if !v.CreatedAt.After(now.Add(-publishDelay)) {
			return token.SigningKey{ID: v.ID, Private: k.private[v.ID]}, true
		}
	}
	if newest < 0 {
		return token.SigningKey{}, false
	}
	id := k.keys[newest].ID
	return token.SigningKey{ID: id, Private: k.private[id]}, true
}

// public returns the published keys.
func (k *keyring) public() map[string]ed25519.PublicKey {
	now := k.now()
	k.mu.RLock()
	defer k.mu.RUnlock()
	out := make(map[string]ed25519.PublicKey, len(k.keys))
	for _, it := range k.keys {
		if it.Value.RetireAt.After(now) {
			out[it.ID] = k.private[it.ID].Public().(ed25519.PublicKey)
		}
	}
	return out
}

func (k *keyring) list() []SigningKeyInfo {
	k.mu.RLock()
	defer k.mu.RUnlock()
	out := make([]SigningKeyInfo, len(k.keys))
	for i, it := range k.keys {
		out[i] = it.Value.info()
	}
	return out
}

// PublicKey makes the keyring a token.KeySource for IAM's own checks; a kid
// another replica just created is found by reloading (at most once a second).
func (k *keyring) PublicKey(ctx context.Context, kid string) (ed25519.PublicKey, error) {
	if pk, ok := k.public()[kid]; ok {
		return pk, nil
	}
	k.mu.RLock()
	stale := k.now().Sub(k.lastRefresh) > time.Second
	k.mu.RUnlock()
	if stale {
		if err := k.refresh(ctx); err != nil {
			return nil, err
		}
		if pk, ok := k.public()[kid]; ok {
			return pk, nil
		}
	}
	return nil, apierr.New(apierr.CodeUnauthenticated, "unknown signing key")
}

// run refreshes the keyring until ctx ends, often enough that a key is
// replaced within a tenth of the rotation period of its end.
func (k *keyring) run(ctx context.Context) {
	every := min(k.rotation/10, time.Minute)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := k.refresh(ctx); err != nil && ctx.Err() == nil {
				k.log.Warn("iam: refreshing signing keys", "err", err)
			}
		}
	}
}
