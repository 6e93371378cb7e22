package state_test

import (
	"strings"
	"testing"

	"github.com/photoncloud/photon/internal/apierr"
	"github.com/photoncloud/photon/internal/state"
)

// TestPageToken pins the token contract: tokens round-trip, are URL-safe
// (they travel in ?page_token=), and only decode under the prefix they were
// made for, so a token cannot be used to read outside a listing.
func TestPageToken(t *testing.T) {
	tests := []struct {
		name   string
		token  string
		prefix string
		want   string // "" with ok means the first page
		ok     bool
	}{
		{"empty is the first page", "", "/p/", "", true},
		{"round trip", state.EncodePageToken("/p/item-07\x00"), "/p/", "/p/item-07\x00", true},
		{"binary key", state.EncodePageToken("/p/\xff\xfe\x00"), "/p/", "/p/\xff\xfe\x00", true},
		{"the prefix itself", state.EncodePageToken("/p/"), "/p/", "/p/", true},
		{"empty prefix takes any key", state.EncodePageToken("/anything"), "", "/anything", true},
		{"other prefix", state.EncodePageToken("/q/item"), "/p/", "", false},
		{"sibling prefix", state.EncodePageToken("/p2/item"), "/p/", "", false},
		{"shorter than the prefix", state.EncodePageToken("/p"), "/p/", "", false},
		{"not base64", "***", "/p/", "", false},
		{"padded", state.EncodePageToken("/p/a") + "=", "/p/", "", false},
		{"std alphabet", "L3Av+w", "/p/", "", false},
		{"whitespace", " " + state.EncodePageToken("/p/a"), "/p/", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := state.DecodePageToken(tc.token, tc.prefix)
			if tc.ok {
				if err != nil || got != tc.want {
					t.Errorf("DecodePageToken = %q, %v; want %q", got, err, tc.want)
				}
				return
			}
			e := apierr.As(err)
			if err == nil || e.Code != apierr.CodeValidation || e.Details["field"] != "page_token" || got != "" {
				t.Errorf("DecodePageToken = %q, %v; want VALIDATION_ERROR on page_token", got, err)
			}
		})
	}
	if tok := state.EncodePageToken("/p/\xff?&=#+/ "); strings.ContainsAny(tok, "?&=#+/ %") {
		t.Errorf("token %q is not URL-safe", tok)
	}
}

// FuzzDecodePageToken feeds DecodePageToken what any client can send: it
// must never panic, every key it accepts must lie under the prefix (else a
// crafted token lists another tenant's keys), and every error is a
// VALIDATION_ERROR on page_token. Encoding a key under the prefix always
// decodes back to it.
func FuzzDecodePageToken(f *testing.F) {
	for _, s := range []struct{ token, prefix string }{
		{"", "/p/"},
		{state.EncodePageToken("/p/a\x00"), "/p/"},
		{state.EncodePageToken("/q/a"), "/p/"},
		{state.EncodePageToken("/p"), "/p/"},
		{"L3AvYQ", "/p/"},
		{"L3AvYQ==", "/p/"},
		{"L3Av+w", ""},
		{"!!!", ""},
		{"Zg", ""},
		{"Zh", "f"},
	} {
		f.Add(s.token, s.prefix)
	}
	f.Fuzz(func(t *testing.T, token, prefix string) {
		key, err := state.DecodePageToken(token, prefix)
		if err != nil {
			e := apierr.As(err)
			if e.Code != apierr.CodeValidation || e.Details["field"] != "page_token" {
				t.Fatalf("DecodePageToken(%q, %q) = %v, want VALIDATION_ERROR on page_token", token, prefix, err)
			}
			if key != "" {
				t.Fatalf("key %q returned with an error", key)
			}
		} else if token == "" {
			if key != "" {
				t.Fatalf("empty token decoded to %q", key)
			}
		} else if !strings.HasPrefix(key, prefix) {
			t.Fatalf("DecodePageToken(%q, %q) = %q, outside the prefix", token, prefix, key)
		}
		// Round trip: any key under the prefix survives encoding.
		k := prefix + token
		back, err := state.DecodePageToken(state.EncodePageToken(k), prefix)
		if err != nil || back != k {
			t.Fatalf("round trip of %q = %q, %v", k, back, err)
		}
	})
}
