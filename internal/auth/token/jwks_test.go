package token

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/photoncloud/photon/internal/apierr"
)

func TestJWKSRoundTrip(t *testing.T) {
	keys := map[string]ed25519.PublicKey{}
	for _, kid := range []string{"k3", "k1", "k2"} {
		keys[kid] = mustKey(t, kid).Public()
	}
	set := NewJWKS(keys)
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Keys []map[string]string `json:"keys"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	for i, k := range doc.Keys {
		want := []string{"alg", "crv", "kid", "kty", "use", "x"}
		var got []string
		for name := range k {
			got = append(got, name)
		}
		slices.Sort(got)
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Fatalf("key %d has members %v, want %v", i, got, want)
		}
		if k["kid"] != fmt.Sprintf("k%d", i+1) || k["kty"] != "OKP" || k["crv"] != "Ed25519" || k["alg"] != "EdDSA" || k["use"] != "sig" || len(k["x"]) != 43 {
			t.Fatalf("key %d = %v", i, k)
		}
	}
	var back JWKS
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	got, err := back.PublicKeys()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, keys) {
		t.Fatalf("PublicKeys = %v, want %v", got, keys)
	}
	if empty, err := NewJWKS(nil).PublicKeys(); err != nil || len(empty) != 0 {
		t.Fatalf("empty set: %v, %v", empty, err)
	}
}

func TestJWKSRejectsMalformed(t *testing.T) {
	good := NewJWKS(map[string]ed25519.PublicKey{"k1": mustKey(t, "k1").Public()}).Keys[0]
	for _, tc := range []struct {
		name  string
		edit  func(*JWK)
		field string
	}{
		{"no kid", func(k *JWK) { k.Kid = "" }, "keys[0].kid"},
		{"RSA", func(k *JWK) { k.Kty = "RSA" }, "keys[0].kty"},
		{"EC", func(k *JWK) { k.Kty = "EC" }, "keys[0].kty"},
		{"X25519", func(k *JWK) { k.Crv = "X25519" }, "keys[0].crv"},
		{"Ed448", func(k *JWK) { k.Crv = "Ed448" }, "keys[0].crv"},
		{"HS256 alg", func(k *JWK) { k.Alg = "HS256" }, "keys[0].alg"},
		{"enc use", func(k *JWK) { k.Use = "enc" }, "keys[0].use"},
		{"short x", func(k *JWK) { k.X = k.X[:40] }, "keys[0].x"},
		{"long x", func(k *JWK) { k.X += "AAAA" }, "keys[0].x"},
		{"padded x", func(k *JWK) { k.X += "=" }, "keys[0].x"},
		{"std base64 x", func(k *JWK) { k.X = "+/" + k.X[2:] }, "keys[0].x"},
		{"empty x", func(k *JWK) { k.X = "" }, "keys[0].x"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := good
			tc.edit(&k)
			_, err := JWKS{Keys: []JWK{k}}.PublicKeys()
			wantCode(t, err, apierr.CodeValidation, "")
			if f := apierr.As(err).Details["field"]; f != tc.field {
				t.Fatalf("field = %v, want %s", f, tc.field)
			}
		})
	}
	t.Run("duplicate kid", func(t *testing.T) {
		_, err := JWKS{Keys: []JWK{good, good}}.PublicKeys()
		wantCode(t, err, apierr.CodeValidation, "")
	})
	t.Run("alg and use may be absent", func(t *testing.T) {
		k := good
		k.Alg, k.Use = "", ""
		if _, err := (JWKS{Keys: []JWK{k}}).PublicKeys(); err != nil {
			t.Fatal(err)
		}
	})
}

// jwksServer is IAM's JWKS endpoint on 127.0.0.1, serving the seed's
// envelope over a key set tests can change, and counting fetches.
type jwksServer struct {
	*httptest.Server
	fetches atomic.Int64

	mu     sync.Mutex
	keys   map[string]ed25519.PublicKey
	body   string        // if set, served instead of the envelope
	status int           // if set, answered instead of 200
	gate   chan struct{} // if set, each request waits for it
}

func newJWKSServer(t *testing.T, keys ...SigningKey) *jwksServer {
	t.Helper()
	s := &jwksServer{keys: map[string]ed25519.PublicKey{}}
	for _, k := range keys {
		s.keys[k.ID] = k.Public()
	}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		if r.Method != http.MethodGet || r.URL.Path != "/api/v1/auth/jwks" {
			http.NotFound(w, r)
			return
		}
		s.mu.Lock()
		gate, status, body := s.gate, s.status, s.body
		env := map[string]any{
			"data": NewJWKS(s.keys),
			"meta": map[string]string{"request_id": "req-1", "timestamp": time.Now().UTC().Format(time.RFC3339)},
		}
		s.mu.Unlock()
		if gate != nil {
			<-gate
		}
		w.Header().Set("Content-Type", "application/json")
		if status != 0 {
			w.WriteHeader(status)
			fmt.Fprint(w, `{"error":{"code":"INTERNAL","message":"boom","details":{}},"meta":{}}`)
			return
		}
		if body != "" {
			fmt.Fprint(w, body)
			return
		}
		if err := json.NewEncoder(w).Encode(env); err != nil {
			t.Errorf("encode: %v", err)
		}
	}))
	t.Cleanup(s.Close)
	if !strings.HasPrefix(s.URL, "http://127.0.0.1:") {
		t.Fatalf("server at %s, want 127.0.0.1", s.URL)
	}
	return s
}

func (s *jwksServer) add(k SigningKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys[k.ID] = k.Public()
}

func (s *jwksServer) set(f func(s *jwksServer)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

func (s *jwksServer) remote(clk *clock) *RemoteKeys {
	r := NewRemoteKeys(s.URL+"/api/v1/auth/jwks", nil)
	r.now = clk.Now
	return r
}

func TestRemoteKeysRotation(t *testing.T) {
	k1, k2, k3 := mustKey(t, "k1"), mustKey(t, "k2"), mustKey(t, "k3")
	srv := newJWKSServer(t, k1)
	clk := newClock(t0)
	r := srv.remote(clk)
	v := NewVerifier(r, WithClock(clk.Now))
	ctx := context.Background()

	if _, err := v.Verify(ctx, mustSign(t, k1, claimsAt(t0))); err != nil {
		t.Fatalf("known kid: %v", err)
	}
	if _, err := r.PublicKey(ctx, "k1"); err != nil || srv.fetches.Load() != 1 {
		t.Fatalf("known kid again: %v, %d fetches, want 1", err, srv.fetches.Load())
	}

	// IAM rotates: a token with the new kid makes exactly one refetch.
	srv.add(k2)
	clk.Advance(r.minRefresh())
	if _, err := v.Verify(ctx, mustSign(t, k2, claimsAt(t0))); err != nil {
		t.Fatalf("rotated kid: %v", err)
	}
	if n := srv.fetches.Load(); n != 2 {
		t.Fatalf("fetches = %d, want 2", n)
	}
	if _, err := v.Verify(ctx, mustSign(t, k2, claimsAt(t0.Add(time.Second)))); err != nil || srv.fetches.Load() != 2 {
		t.Fatalf("second token of the new key: %v, %d fetches", err, srv.fetches.Load())
	}

	// A kid IAM does not have: refused, and within MinRefresh not refetched.
	_, err := v.Verify(ctx, mustSign(t, k3, claimsAt(t0)))
	wantCode(t, err, apierr.CodeUnauthenticated, "unknown signing key")
	if n := srv.fetches.Load(); n != 2 {
		t.Fatalf("fetches = %d, want 2 (unknown kid within MinRefresh)", n)
	}
	clk.Advance(r.minRefresh())
	_, err = r.PublicKey(ctx, "k3")
	wantCode(t, err, apierr.CodeUnauthenticated, "unknown signing key")
	if n := srv.fetches.Load(); n != 3 {
		t.Fatalf("fetches = %d, want 3 (unknown kid after MinRefresh)", n)
	}
}

func TestRemoteKeysMaxAge(t *testing.T) {
	k1 := mustKey(t, "k1")
	srv := newJWKSServer(t, k1)
	clk := newClock(t0)
	r := srv.remote(clk)
	r.MaxAge = time.Minute
	ctx := context.Background()
	if _, err := r.PublicKey(ctx, "k1"); err != nil {
		t.Fatal(err)
	}
	clk.Advance(59 * time.Second)
	if _, err := r.PublicKey(ctx, "k1"); err != nil || srv.fetches.Load() != 1 {
		t.Fatalf("fresh set: %v, %d fetches", err, srv.fetches.Load())
	}
	// IAM retires k1: once the set is stale, the refetch drops it.
	srv.set(func(s *jwksServer) { delete(s.keys, "k1") })
	clk.Advance(time.Second)
	_, err := r.PublicKey(ctx, "k1")
	wantCode(t, err, apierr.CodeUnauthenticated, "unknown signing key")
	if n := srv.fetches.Load(); n != 2 {
		t.Fatalf("fetches = %d, want 2", n)
	}
}

// TestRemoteKeysFlood: 100 concurrent lookups of random kids cost IAM one
// fetch, whether the set is cold (they share it) or warm (MinRefresh).
func TestRemoteKeysFlood(t *testing.T) {
	k1 := mustKey(t, "k1")
	for _, warm := range []bool{false, true} {
		t.Run(fmt.Sprintf("warm=%v", warm), func(t *testing.T) {
			srv := newJWKSServer(t, k1)
			r := NewRemoteKeys(srv.URL+"/api/v1/auth/jwks", nil)
			r.MinRefresh = time.Minute // the whole flood is "within MinRefresh" even on a slow machine
			if warm {
				if _, err := r.PublicKey(context.Background(), "k1"); err != nil {
					t.Fatal(err)
				}
			}
			var wg sync.WaitGroup
			for i := range 100 {
				wg.Go(func() {
					_, err := r.PublicKey(context.Background(), fmt.Sprintf("random-%d", i))
					wantCodeNoFatal(t, err, apierr.CodeUnauthenticated, "unknown signing key")
				})
			}
			wg.Wait()
			if n := srv.fetches.Load(); n != 1 {
				t.Fatalf("fetches = %d, want 1", n)
			}
		})
	}
}

func wantCodeNoFatal(t *testing.T, err error, code apierr.Code, msg string) {
	t.Helper()
	if ae := apierr.As(err); err == nil || ae.Code != code || ae.Message != msg {
		t.Errorf("error = %v, want %s %q", err, code, msg)
	}
}

func TestRemoteKeysUnavailable(t *testing.T) {
	k1 := mustKey(t, "k1")
	ctx := context.Background()

	t.Run("server down", func(t *testing.T) {
		srv := newJWKSServer(t, k1)
		srv.Close()
		r := srv.remote(newClock(t0))
		_, err := r.PublicKey(ctx, "k1")
		wantCode(t, err, apierr.CodeUnavailable, "signing keys unavailable")
		// Verify passes it on: IAM being down is a 503, not the token's fault.
		_, err = NewVerifier(r, WithClock(newClock(t0).Now)).Verify(ctx, mustSign(t, k1, claimsAt(t0)))
		wantCode(t, err, apierr.CodeUnavailable, "")
	})

	t.Run("error status", func(t *testing.T) {
		srv := newJWKSServer(t, k1)
		srv.set(func(s *jwksServer) { s.status = http.StatusInternalServerError })
		_, err := srv.remote(newClock(t0)).PublicKey(ctx, "k1")
		wantCode(t, err, apierr.CodeUnavailable, "")
	})

	t.Run("retries only after MinRefresh", func(t *testing.T) {
		srv := newJWKSServer(t, k1)
		srv.set(func(s *jwksServer) { s.status = http.StatusServiceUnavailable })
		clk := newClock(t0)
		r := srv.remote(clk)
		for range 5 {
			_, err := r.PublicKey(ctx, "k1")
			wantCode(t, err, apierr.CodeUnavailable, "")
		}
		if n := srv.fetches.Load(); n != 1 {
			t.Fatalf("fetches = %d, want 1", n)
		}
		srv.set(func(s *jwksServer) { s.status = 0 })
		clk.Advance(r.minRefresh())
		if _, err := r.PublicKey(ctx, "k1"); err != nil {
			t.Fatalf("after recovery: %v", err)
		}
	})

	t.Run("known keys outlive an outage", func(t *testing.T) {
		srv := newJWKSServer(t, k1)
		clk := newClock(t0)
		r := srv.remote(clk)
		if _, err := r.PublicKey(ctx, "k1"); err != nil {
			t.Fatal(err)
		}
		srv.set(func(s *jwksServer) { s.status = http.StatusBadGateway })
		clk.Advance(r.maxAge() + time.Second) // stale: a refetch is due, and fails
		if _, err := r.PublicKey(ctx, "k1"); err != nil {
			t.Fatalf("known kid during outage: %v", err)
		}
		if n := srv.fetches.Load(); n != 2 {
			t.Fatalf("fetches = %d, want 2", n)
		}
		_, err := r.PublicKey(ctx, "k9")
		wantCode(t, err, apierr.CodeUnavailable, "")
	})

	t.Run("caller gives up while another fetches", func(t *testing.T) {
		srv := newJWKSServer(t, k1)
		gate := make(chan struct{})
		srv.set(func(s *jwksServer) { s.gate = gate })
		r := srv.remote(newClock(t0))
		first := make(chan error, 1)
		go func() {
			_, err := r.PublicKey(ctx, "k1")
			first <- err
		}()
		for srv.fetches.Load() == 0 {
			time.Sleep(time.Millisecond)
		}
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		_, err := r.PublicKey(cctx, "k1")
		wantCode(t, err, apierr.CodeUnavailable, "")
		close(gate)
		if err := <-first; err != nil {
			t.Fatalf("the fetching caller: %v", err)
		}
		if n := srv.fetches.Load(); n != 1 {
			t.Fatalf("fetches = %d, want 1", n)
		}
	})
}

func TestRemoteKeysMalformed(t *testing.T) {
	k1 := mustKey(t, "k1")
	good, _ := json.Marshal(NewJWKS(map[string]ed25519.PublicKey{"k1": k1.Public()}))
	for _, tc := range []struct{ name, body string }{
		{"not JSON", "<html>hi</html>"},
		{"truncated", `{"data":{"keys":[{"kty":"OKP"`},
		{"no data", `{"meta":{}}`},
		{"null data", `{"data":null,"meta":{}}`},
		{"bare JWKS, not the envelope", string(good)},
		{"keys not a list", `{"data":{"keys":{}}}`},
		{"RSA key", `{"data":{"keys":[{"kty":"RSA","kid":"k1","n":"AQAB","e":"AQAB"}]}}`},
		{"short x", `{"data":{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k1","x":"AAAA"}]}}`},
		{"oversized", `{"data":{"keys":[],"pad":"` + strings.Repeat("a", maxJWKSBytes) + `"}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newJWKSServer(t, k1)
			srv.set(func(s *jwksServer) { s.body = tc.body })
			_, err := srv.remote(newClock(t0)).PublicKey(context.Background(), "k1")
			wantCode(t, err, apierr.CodeUnavailable, "signing keys unavailable")
			if apierr.As(err).Err == nil {
				t.Fatal("no cause kept for the logs")
			}
		})
	}
}

func TestStaticKeys(t *testing.T) {
	k := mustKey(t, "k1")
	s := StaticKeys{"k1": k.Public()}
	if got, err := s.PublicKey(context.Background(), "k1"); err != nil || !got.Equal(k.Public()) {
		t.Fatalf("PublicKey(k1) = %x, %v", got, err)
	}
	_, err := s.PublicKey(context.Background(), "k2")
	wantCode(t, err, apierr.CodeUnauthenticated, "unknown signing key")
}
