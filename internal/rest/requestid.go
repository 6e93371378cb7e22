package rest

import (
	"context"

	"github.com/google/uuid"
)

// HeaderRequestID carries a caller's request ID in and ours out.
const HeaderRequestID = "X-Request-ID"

type requestIDKey struct{}

// RequestID is the request ID of ctx ("" outside a request).
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// requestIDFrom honours a caller's ID when it is short printable ASCII (so it
// cannot forge log lines or headers), else makes a uuid v4.
func requestIDFrom(h string) string {
	if h != "" && len(h) <= 128 {
		ok := true
		for i := 0; i < len(h); i++ {
			if h[i] < 0x21 || h[i] > 0x7e {
				ok = false
				break
			}
		}
		if ok {
			return h
		}
	}
	return uuid.NewString()
}
