// Package ids makes resource IDs: a kind prefix and a sortable random part
// (a ULID in lower-case Crockford base32), so that IDs listed by key come out
// in creation order and never collide across nodes.
package ids

import (
	"crypto/rand"
	"encoding/binary"
	"strings"
	"time"

	"github.com/photoncloud/photon/internal/apierr"
)

const alphabet = "0123456789abcdefghjkmnpqrstvwxyz" // Crockford, lower case

// New returns "<kind>-<ulid>", e.g. "vpc-01jd3k…".
func New(kind string) string {
	return kind + "-" + ULID(time.Now())
}

// ULID returns a 26-character ULID for t: 48 bits of milliseconds then 80
// random bits.
func ULID(t time.Time) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(t.UnixMilli())<<16)
	if _, err := rand.Read(b[6:]); err != nil {
		panic("ids: crypto/rand failed: " + err.Error())
	}
	// 128 bits → 26 base32 digits, most significant first (the top two bits
	// of the first digit are zero).
	hi := binary.BigEndian.Uint64(b[:8])
	lo := binary.BigEndian.Uint64(b[8:])
	var out [26]byte
	for i := 25; i >= 0; i-- {
		out[i] = alphabet[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	return string(out[:])
}

// Valid reports whether id has the form New(kind) produces.
func Valid(kind, id string) bool {
	rest, ok := strings.CutPrefix(id, kind+"-")
	if !ok || len(rest) != 26 || rest[0] > '7' {
		return false
	}
	for i := 0; i < len(rest); i++ {
		if strings.IndexByte(alphabet, rest[i]) < 0 {
			return false
		}
	}
	return true
}

// MaxLen bounds a caller-chosen id (a DNS label's length).
const MaxLen = 63

// Check validates an id a caller chose or names (a project, an org, a
// principal, a resource): 1–MaxLen lower-case letters, digits, '-', '_',
// '.' or ':', starting with a letter or digit — safe in keys and URLs, the
// same rule in every service. field names it in the VALIDATION_ERROR.
func Check(field, id string) error {
	if id == "" {
		return apierr.Validation(field, apierr.Required, "%s is required", field)
	}
	if len(id) > MaxLen {
		return apierr.Validation(field, apierr.MaxLength, "%s must be at most %d characters", field, MaxLen)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || i > 0 && (c == '-' || c == '_' || c == '.' || c == ':')) {
			return apierr.Validation(field, apierr.Format, "%s %q must be lower-case letters, digits, '-', '_', '.' or ':', starting with a letter or digit", field, id)
		}
	}
	return nil
}
