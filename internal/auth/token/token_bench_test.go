package token

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"strings"
	"testing"
	"time"
)

// These benchmarks are for information (the figures that matter are ratios
// measured in one run): Verify uncached should cost little more than
// BenchmarkEd25519Verify, and a cached hit a small fraction of it.

func benchToken(b *testing.B) (SigningKey, string) {
	b.Helper()
	k := seedKey(b)
	return k, mustSign(b, k, claimsAt(t0))
}

// BenchmarkEd25519Verify is the floor: one raw signature check over the
// same signing input a token has.
func BenchmarkEd25519Verify(b *testing.B) {
	k, raw := benchToken(b)
	i := strings.LastIndexByte(raw, '.')
	msg := []byte(raw[:i])
	sig, err := base64.RawURLEncoding.DecodeString(raw[i+1:])
	if err != nil {
		b.Fatal(err)
	}
	pub := k.Public()
	b.ReportAllocs()
	for b.Loop() {
		if !ed25519.Verify(pub, msg, sig) {
			b.Fatal("bad signature")
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	k, raw := benchToken(b)
	keys := StaticKeys{"k1": k.Public()}
	ctx := context.Background()
	clk := func() time.Time { return t0 } // lock-free, unlike the tests' settable clock
	b.Run("uncached", func(b *testing.B) {
		v := NewVerifier(keys, WithClock(clk), WithoutCache())
		b.ReportAllocs()
		for b.Loop() {
			if _, err := v.Verify(ctx, raw); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cached", func(b *testing.B) {
		v := NewVerifier(keys, WithClock(clk))
		if _, err := v.Verify(ctx, raw); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := v.Verify(ctx, raw); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cached-parallel", func(b *testing.B) {
		v := NewVerifier(keys, WithClock(clk))
		if _, err := v.Verify(ctx, raw); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := v.Verify(ctx, raw); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}
