package creditservice

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"

	"github.com/photoncloud/photon/internal/apierr"
	"github.com/photoncloud/photon/internal/state"
)

// IdempotencyKey is a request's Idempotency-Key with the hash of what it
// asked (method, path and body), as Stripe's: the same key with the same
// request answers the first answer again and moves nothing; with another
// request it is a 409.
type IdempotencyKey struct {
	Key         string
	RequestHash string
}

// MaxIdempotencyKeyLen bounds the header (Stripe allows 255).
const MaxIdempotencyKeyLen = 255

// NewIdempotencyKey validates key and hashes the request it came with.
func NewIdempotencyKey(key, method, path string, body []byte) (*IdempotencyKey, error) {
	if key == "" {
		return nil, nil
	}
	if len(key) > MaxIdempotencyKeyLen {
		return nil, apierr.Validation("Idempotency-Key", apierr.MaxLength, "Idempotency-Key must be at most %d characters", MaxIdempotencyKeyLen)
	}
	for i := 0; i < len(key); i++ {
		if key[i] < 0x21 || key[i] > 0x7e {
			return nil, apierr.Validation("Idempotency-Key", apierr.Format, "Idempotency-Key must be printable ASCII without spaces")
		}
	}
	h := sha256.New()
	h.Write([]byte(method + " " + path + "\x00"))
	h.Write(body)
	return &IdempotencyKey{Key: key, RequestHash: hex.EncodeToString(h.Sum(nil))}, nil
}

// idemRecord is a remembered answer.
type idemRecord struct {
	RequestHash string          `json:"request_hash"`
	Status      int             `json:"status"`
	Response    json.RawMessage `json:"response"`
	CreatedAt   time.Time       `json:"created_at"`
}

func idemID(project string, k *IdempotencyKey) string {
	sum := sha256.Sum256([]byte(k.Key))
	return project + "/" + hex.EncodeToString(sum[:16])
}

// replay returns the remembered answer for k, if any.
func (s *Service) replay(ctx context.Context, project string, k *IdempotencyKey) (int, any, bool, error) {
	it, err := s.st.idempotency.Get(ctx, idemID(project, k))
	if apierr.CodeOf(err) == apierr.CodeNotFound {
		return 0, nil, false, nil
	}
	if err != nil {
		return 0, nil, false, err
	}
	if it.Value.RequestHash != k.RequestHash {
		return 0, nil, true, &apierr.Error{Code: apierr.CodeConflict,
			Message: "this Idempotency-Key was used with a different request",
			Details: map[string]any{"idempotency_key": k.Key}}
	}
	return it.Value.Status, it.Value.Response, true, nil
}

// remember is the op that stores the answer of the change being made, in
// its own transaction: the answer exists exactly when the change does.
func (s *Service) remember(project string, k *IdempotencyKey, status int, result any, now time.Time) (state.Op, error) {
	b, err := json.Marshal(result)
	if err != nil {
		return state.Op{}, apierr.Wrap(apierr.CodeInternal, err, "encoding the answer")
	}
	return s.st.idempotency.CreateOp(idemID(project, k), idemRecord{RequestHash: k.RequestHash, Status: status, Response: b, CreatedAt: now})
}
