package rest

import "testing"

func TestReachable(t *testing.T) {
	for in, want := range map[string]string{
		"0.0.0.0:8082":   "127.0.0.1:8082",
		":8082":          "127.0.0.1:8082",
		"[::]:8082":      "127.0.0.1:8082",
		"10.0.0.1:8082":  "10.0.0.1:8082",
		"[::1]:8082":     "[::1]:8082",
		"localhost:8082": "localhost:8082",
		"not an address": "not an address",
	} {
		if got := Reachable(in); got != want {
			t.Errorf("Reachable(%q) = %q, want %q", in, got, want)
		}
	}
}
