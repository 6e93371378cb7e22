package auth_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/photoncloud/photon/internal/apierr"
	"github.com/photoncloud/photon/internal/auth"
	"github.com/photoncloud/photon/internal/auth/policy"
	"github.com/photoncloud/photon/internal/testutil"
)

// An access key IAM issued is found with its secret, and stands for its
// principal at its project with the roles bound there; a revoked one is
// gone.
func TestAccessKeys(t *testing.T) {
	st := testutil.StartStack(t, "")
	iam := "http://" + st.IAM.HTTPAddr()
	post := func(path string, body any) map[string]any {
		t.Helper()
		b, _ := json.Marshal(body)
		resp, err := http.Post(iam+path, "application/json", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var env struct {
			Data map[string]any `json:"data"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&env); err != nil || resp.StatusCode != 201 {
			t.Fatalf("POST %s: %d %v", path, resp.StatusCode, err)
		}
		return env.Data
	}
	post("/api/v1/users", map[string]any{"id": "writer", "name": "Writer", "type": "service_account"})
	post("/api/v1/bindings", map[string]any{"principal_id": "writer", "role": "member", "scope_id": "proj-s3"})
	cred := post("/api/v1/credentials", map[string]any{"principal_id": "writer", "project_id": "proj-s3"})

	ctx := testutil.Context(t)
	cli := st.ChainFire.Client()
	k, err := auth.LookupAccessKey(ctx, cli, cred["access_key_id"].(string))
	if err != nil {
		t.Fatal(err)
	}
	if k.Secret != cred["secret_access_key"] || k.PrincipalID != "writer" || k.ProjectID != "proj-s3" {
		t.Fatalf("key: %+v, issued %v", k, cred)
	}
	authn := st.ChainFire.Auth()
	// The binding reaches this process's cache through its watch.
	deadline := time.Now().Add(5 * time.Second)
	for {
		s := authn.KeySubject(k)
		d, err := authn.Cache().Decide(s, "lightningstor.objects.put", policy.Target{ProjectID: "proj-s3"})
		if err == nil && d == policy.Allow {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("member at its project: %v %v", d, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	s := authn.KeySubject(k)
	if d, _ := authn.Cache().Decide(s, "lightningstor.objects.get", policy.Target{ProjectID: "proj-other"}); d == policy.Allow {
		t.Fatal("a key reached another project")
	}
	if _, err := auth.LookupAccessKey(ctx, cli, "AKNOWHERE"); apierr.CodeOf(err) != apierr.CodeNotFound {
		t.Fatalf("unknown key: %v", err)
	}
}
