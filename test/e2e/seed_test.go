// Package e2e drives the built photon binary as a user does.
//
// The seed replay runs `photon up` on the seed's own ports inside a network
// namespace of its own: the ports cannot clash with anything on the host,
// and the seed's member address 192.168.1.102 is put on the namespace's
// loopback, so replaying its "add member" example verbatim sends no traffic
// outside the machine.
package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/photoncloud/photon/internal/testutil"
)

// needSeedTools skips the test unless the tools the seed's examples use
// (curl, jq, bash) are installed.
func needSeedTools(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"curl", "jq", "bash"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (scripts/install-deps.sh installs it)", tool)
		}
	}
}

// seedNS is a network namespace the seed replay runs in.
type seedNS struct {
	name string
}

func newSeedNS(t *testing.T) *seedNS {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the seed replay needs root to create a network namespace (CI runs as root)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("the seed replay needs iproute2's ip (scripts/install-deps.sh installs it)")
	}
	ns := &seedNS{name: fmt.Sprintf("photon-e2e-%d", os.Getpid())}
	for _, args := range [][]string{
		{"netns", "add", ns.name},
		{"-n", ns.name, "link", "set", "lo", "up"},
		{"-n", ns.name, "addr", "add", "192.168.1.102/32", "dev", "lo"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
		if args[0] == "netns" {
			t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns.name).Run() })
		}
	}
	return ns
}

// command is a command to run inside the namespace.
func (ns *seedNS) command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", ns.name, name}, args...)...)
}

// startSeedPhoton runs `photon up` on the seed's ports inside ns.
func startSeedPhoton(t *testing.T, ns *seedNS, dataDir string) *upProcess {
	t.Helper()
	// The namespace is the node: named after it, so that seed replays
	// running side by side never take each other's router namespaces.
	cmd := ns.command(testutil.PhotonBinary(t), "up", "--data-dir", dataDir, "--node-name", ns.name)
	return startUp(t, cmd, func(p *upProcess) bool { return strings.Contains(p.stdout.String(), "data dir:") })
}

// seedResult is what one replayed example printed.
type seedResult struct {
	stdout   string
	statuses []int // every HTTP status curl received, in order
}

// envelope decodes the only JSON document stdout holds.
func (r seedResult) envelope(t *testing.T) (data map[string]any, errBody map[string]any) {
	t.Helper()
	var env struct {
		Data  map[string]any `json:"data"`
		Error map[string]any `json:"error"`
		Meta  struct {
			RequestID string `json:"request_id"`
			Timestamp string `json:"timestamp"`
		} `json:"meta"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &env); err != nil {
		t.Fatalf("output is not one envelope: %v\n%s", err, r.stdout)
	}
	if env.Meta.RequestID == "" {
		t.Fatalf("envelope without meta.request_id: %s", r.stdout)
	}
	if _, err := time.Parse(time.RFC3339, env.Meta.Timestamp); err != nil {
		t.Fatalf("meta.timestamp %q: %v", env.Meta.Timestamp, err)
	}
	return env.Data, env.Error
}

// replay runs cmd, a command copied from the seed, in bash inside ns. curl
// is wrapped only to record the status lines it receives; the command text
// itself is the seed's, which the test checks.
func replay(t *testing.T, ns *seedNS, seed, cmd string) seedResult {
	t.Helper()
	if !strings.Contains(seed, cmd) {
		t.Fatalf("not a verbatim seed example:\n%s", cmd)
	}
	return runInNS(t, ns, cmd)
}

// runInNS runs a bash script inside ns with curl wrapped as replay wraps
// it. Callers other than replay run seed text they have checked verbatim
// plus a stated edit (a placeholder filled in, a step for a service that
// does not exist yet replaced).
func runInNS(t *testing.T, ns *seedNS, cmd string) seedResult {
	t.Helper()
	hdr := filepath.Join(t.TempDir(), "headers")
	script := fmt.Sprintf("set -o pipefail\nHDR=%q\n"+
		"curl() { command curl -sS -D \"$HDR.one\" \"$@\"; local rc=$?; cat \"$HDR.one\" >> \"$HDR\"; return $rc; }\n%s\n", hdr, cmd)
	c := ns.command("bash", "-c", script)
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &out, &errb
	if err := c.Run(); err != nil {
		t.Fatalf("%s\nfailed: %v\nstderr: %s", cmd, err, errb.String())
	}
	res := seedResult{stdout: out.String()}
	raw, _ := os.ReadFile(hdr)
	for _, line := range strings.Split(string(raw), "\n") {
		var code int
		if strings.HasPrefix(line, "HTTP/") {
			if _, err := fmt.Sscanf(strings.Fields(line)[1], "%d", &code); err == nil {
				res.statuses = append(res.statuses, code)
			}
		}
	}
	return res
}

func wantStatus(t *testing.T, r seedResult, want ...int) {
	t.Helper()
	if fmt.Sprint(r.statuses) != fmt.Sprint(want) {
		t.Fatalf("statuses %v, want %v\noutput: %s", r.statuses, want, r.stdout)
	}
}

func readSeed(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testutil.RepoRoot(t), "docs", "seed", "photoncloud-seed.md"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestSeedChainFire replays every ChainFire example of the seed — section
// 1, the request-format pattern, the migration, debugging and performance
// sections — against `photon up`, then restarts it and checks that every
// key survived.
func TestSeedChainFire(t *testing.T) {
	needSeedTools(t)
	seed := readSeed(t)
	ns := newSeedNS(t)
	dataDir := t.TempDir()
	photon := startSeedPhoton(t, ns, dataDir)

	t.Run("health", func(t *testing.T) {
		r := replay(t, ns, seed, `curl http://localhost:8081/health`)
		wantStatus(t, r, 200)
		data, _ := r.envelope(t)
		if data["status"] != "ok" || data["service"] != "chainfire" {
			t.Errorf("health data = %v", data)
		}
	})
	t.Run("cluster status", func(t *testing.T) {
		r := replay(t, ns, seed, `# Get cluster status (node_id, term, role, is_leader)
curl http://localhost:8081/api/v1/cluster/status`)
		wantStatus(t, r, 200)
		data, _ := r.envelope(t)
		if data["node_id"] != float64(1) || data["role"] != "leader" || data["is_leader"] != true ||
			data["term"].(float64) < 1 || data["cluster_id"] == "" {
			t.Errorf("status data = %v", data)
		}
	})
	t.Run("request format put", func(t *testing.T) {
		r := replay(t, ns, seed, `# Standard POST request with JSON body
curl -X POST http://localhost:8081/api/v1/kv/mykey/put \
-H "Content-Type: application/json" \
-d '{"value": "myvalue"}'`)
		wantStatus(t, r, 200)
		if data, _ := r.envelope(t); data["key"] != "mykey" || data["value"] != "myvalue" {
			t.Errorf("put data = %v", data)
		}
	})
	const alice = `{"name":"alice","email":"alice@example.com"}`
	t.Run("put", func(t *testing.T) {
		r := replay(t, ns, seed, `curl -X POST http://localhost:8081/api/v1/kv/user:123/put \
-H "Content-Type: application/json" \
-d '{"value": "{\"name\":\"alice\",\"email\":\"alice@example.com\"}"}'`)
		wantStatus(t, r, 200)
		if data, _ := r.envelope(t); data["key"] != "user:123" || data["value"] != alice {
			t.Errorf("put data = %v", data)
		}
	})
	t.Run("get", func(t *testing.T) {
		r := replay(t, ns, seed, `curl http://localhost:8081/api/v1/kv/user:123`)
		wantStatus(t, r, 200)
		if data, _ := r.envelope(t); data["key"] != "user:123" || data["value"] != alice {
			t.Errorf("get data = %v", data)
		}
	})
	t.Run("range scan", func(t *testing.T) {
		r := replay(t, ns, seed, `# List all keys starting with "user:"
curl "http://localhost:8081/api/v1/kv?prefix=user:"`)
		wantStatus(t, r, 200)
		data, _ := r.envelope(t)
		items, _ := data["items"].([]any)
		if len(items) != 1 || items[0].(map[string]any)["key"] != "user:123" || items[0].(map[string]any)["value"] != alice {
			t.Errorf("scan data = %v", data)
		}
	})
	t.Run("delete", func(t *testing.T) {
		r := replay(t, ns, seed, `curl -X POST http://localhost:8081/api/v1/kv/user:123/delete`)
		wantStatus(t, r, 200)
		if data, _ := r.envelope(t); data["key"] != "user:123" || data["deleted"] != true {
			t.Errorf("delete data = %v", data)
		}
		r = replay(t, ns, seed, `curl http://localhost:8081/api/v1/kv/user:123`)
		wantStatus(t, r, 404)
		if _, e := r.envelope(t); e["code"] != "NOT_FOUND" {
			t.Errorf("get after delete: %v", e)
		}
	})
	t.Run("add member", func(t *testing.T) {
		r := replay(t, ns, seed, `curl -X POST http://localhost:8081/api/v1/cluster/members \
-H "Content-Type: application/json" \
-d '{
"node_id": 2,
"address": "192.168.1.102:50051"
}'`)
		wantStatus(t, r, 201)
		data, _ := r.envelope(t)
		m, _ := data["member"].(map[string]any)
		if m["node_id"] != float64(2) || m["is_learner"] != true || data["initial_cluster_state"] != "existing" {
			t.Errorf("add member data = %v", data)
		}
		// The unstarted learner does not count towards quorum: writes go on.
		r = replay(t, ns, seed, `# Standard POST request with JSON body
curl -X POST http://localhost:8081/api/v1/kv/mykey/put \
-H "Content-Type: application/json" \
-d '{"value": "myvalue"}'`)
		wantStatus(t, r, 200)
	})
	t.Run("migration", func(t *testing.T) {
		r := replay(t, ns, seed, `curl http://localhost:8081/api/v1/kv/mykey | jq -r '.data.value'`)
		wantStatus(t, r, 200)
		if r.stdout != "myvalue\n" {
			t.Errorf("output %q, want myvalue", r.stdout)
		}
	})
	t.Run("connection reuse", func(t *testing.T) {
		for _, k := range []string{"key1", "key2", "key3", "user:1", "user:2", "user:3"} {
			nsPut(t, ns, k, "v-"+k)
		}
		r := replay(t, ns, seed, `curl -K - <<EOF
url = http://localhost:8081/api/v1/kv/key1
url = http://localhost:8081/api/v1/kv/key2
url = http://localhost:8081/api/v1/kv/key3
EOF`)
		wantStatus(t, r, 200, 200, 200)
		for _, k := range []string{"key1", "key2", "key3"} {
			if !strings.Contains(r.stdout, `"value":"v-`+k+`"`) {
				t.Errorf("output lacks %s: %s", k, r.stdout)
			}
		}
	})
	t.Run("batch", func(t *testing.T) {
		r := replay(t, ns, seed, `# Bad: Multiple individual requests
curl http://localhost:8081/api/v1/kv/user:1
curl http://localhost:8081/api/v1/kv/user:2
curl http://localhost:8081/api/v1/kv/user:3`)
		wantStatus(t, r, 200, 200, 200)
		r = replay(t, ns, seed, `# Good: Single range query
curl "http://localhost:8081/api/v1/kv?prefix=user:"`)
		wantStatus(t, r, 200)
		data, _ := r.envelope(t)
		if items, _ := data["items"].([]any); len(items) != 3 {
			t.Errorf("range query data = %v", data)
		}
	})
	t.Run("debugging", func(t *testing.T) {
		r := replay(t, ns, seed, `# Show request/response headers
curl -v http://localhost:8081/health`)
		wantStatus(t, r, 200)
		r = replay(t, ns, seed, `# Show timing information
curl -w "@-" -o /dev/null -s http://localhost:8081/health <<'EOF'
time_namelookup: %{time_namelookup}\n
time_connect: %{time_connect}\n
time_total: %{time_total}\n
EOF`)
		wantStatus(t, r, 200)
		if !strings.Contains(r.stdout, "time_total: ") {
			t.Errorf("timing output = %q", r.stdout)
		}
	})

	// A clean stop and a second `photon up` on the same data dir keep every key.
	photon.stop(t)
	startSeedPhoton(t, ns, dataDir)
	r := replay(t, ns, seed, `curl http://localhost:8081/api/v1/kv/mykey | jq -r '.data.value'`)
	if r.stdout != "myvalue\n" {
		t.Errorf("after restart mykey = %q", r.stdout)
	}
	r = replay(t, ns, seed, `# Good: Single range query
curl "http://localhost:8081/api/v1/kv?prefix=user:"`)
	if data, _ := r.envelope(t); len(data["items"].([]any)) != 3 {
		t.Errorf("after restart user: keys = %v", data)
	}
	r = replay(t, ns, seed, `curl http://localhost:8081/api/v1/kv/user:123`)
	wantStatus(t, r, 404)
}

// nsPut writes a key through REST inside ns (test set-up, not a seed example).
func nsPut(t *testing.T, ns *seedNS, key, value string) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"value": value})
	out, err := ns.command("curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST",
		"-H", "Content-Type: application/json", "-d", string(body),
		"http://localhost:8081/api/v1/kv/"+key+"/put").CombinedOutput()
	if err != nil || string(out) != fmt.Sprint(http.StatusOK) {
		t.Fatalf("put %s: %v %s", key, err, out)
	}
}
