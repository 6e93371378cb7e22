package e2e

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/photoncloud/photon/internal/testutil"
)

// TestServeIAMReplicas runs two `photon serve iam` replicas over one
// `photon serve chainfire` node: IAM is stateless, so a user created on one
// replica issues a token on the other, the token verifies on both (they
// publish the same keys), and a revocation made on one is honoured by the
// other and by ChainFire at once (all three follow the same records).
func TestServeIAMReplicas(t *testing.T) {
	// ChainFire checks tokens against replica A's JWKS.
	replicas := []string{testutil.FreeAddr(t), testutil.FreeAddr(t)}
	c := newCluster(t, 1)
	c.extraArgs = []string{"--iam-url", "http://" + replicas[0]}
	cf := c.node(1)
	c.start(t, cf)
	c.waitReady(t, cf, 60*time.Second)
	for _, addr := range replicas {
		cmd := exec.Command(testutil.PhotonBinary(t), "serve", "iam", "--http-addr", addr,
			"--chainfire-endpoints", cf.grpcAddr)
		cmd.Env = cleanEnv()
		p := startUp(t, cmd, func(p *upProcess) bool { return strings.Contains(p.stdout.String(), "IAM: REST http://"+addr) })
		t.Cleanup(func() { p.stop(t) })
	}
	a, b := replicas[0], replicas[1]
	ctx := context.Background()
	req := func(addr, token, method, path string, body any) response {
		t.Helper()
		r, err := callAddr(ctx, c.http, addr, token, method, path, body)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}

	if r := req(a, "", "POST", "/api/v1/users", map[string]any{"id": "user-dana", "name": "Dana", "type": "user"}); r.status != 201 {
		t.Fatalf("create user on replica A: %s", r)
	}
	if r := req(b, "", "POST", "/api/v1/bindings", map[string]any{"principal_id": "user-dana", "role": "admin", "scope_id": "system"}); r.status != 201 {
		t.Fatalf("bind on replica B: %s", r)
	}
	r := req(b, "", "POST", "/api/v1/auth/token", map[string]any{"principal_id": "user-dana", "scope_id": "system", "roles": []string{"admin"}})
	var issued struct{ Token string }
	if err := r.decode(&issued); err != nil || r.status != 200 {
		t.Fatalf("token on replica B: %s", r)
	}
	for _, addr := range replicas {
		var v struct {
			Valid       bool
			PrincipalID string `json:"principal_id"`
		}
		if r := req(addr, "", "POST", "/api/v1/auth/verify", map[string]any{"token": issued.Token}); r.decode(&v) != nil || !v.Valid || v.PrincipalID != "user-dana" {
			t.Fatalf("verify on %s: %s", addr, r)
		}
	}
	if r := req(cf.httpAddr, issued.Token, "GET", "/api/v1/cluster/status", nil); r.status != 200 {
		t.Fatalf("ChainFire with the admin token: %s", r)
	}

	if r := req(a, "", "POST", "/api/v1/auth/revoke", map[string]any{"token": issued.Token}); r.status != 200 {
		t.Fatalf("revoke on replica A: %s", r)
	}
	eventually(t, 5*time.Second, "the revocation reaches replica B and ChainFire", func() error {
		var v struct{ Valid bool }
		if r := req(b, "", "POST", "/api/v1/auth/verify", map[string]any{"token": issued.Token}); r.decode(&v) != nil || v.Valid {
			return errString("replica B still says valid: " + r.String())
		}
		if r := req(cf.httpAddr, issued.Token, "GET", "/api/v1/cluster/status", nil); r.status != 401 {
			return errString("ChainFire still accepts it: " + r.String())
		}
		return nil
	})
}

type errString string

func (e errString) Error() string { return string(e) }
