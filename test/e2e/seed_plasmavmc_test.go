package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The seed's PlasmaVMC examples (section 4) and the whole of Example 1, as
// the seed writes them.
const (
	seedVMHealth = `curl http://localhost:8084/health`
	seedVMList   = `curl "http://localhost:8084/api/v1/vms?org_id=org-123&project_id=proj-456"`
	seedVMCreate = `curl -X POST http://localhost:8084/api/v1/vms \
-H "Content-Type: application/json" \
-d '{
"name": "app-server-03",
"org_id": "org-123",
"project_id": "proj-456",
"vcpus": 2,
"memory_mib": 4096,
"hypervisor": "kvm",
"image_id": "ubuntu-22.04",
"disk_size_gb": 50
}'`
	seedVMGet   = `curl "http://localhost:8084/api/v1/vms/vm-003?org_id=org-123&project_id=proj-456"`
	seedVMStart = `curl -X POST "http://localhost:8084/api/v1/vms/vm-003/start?org_id=org-123&project_id=proj-456"`
	seedVMStop  = `curl -X POST "http://localhost:8084/api/v1/vms/vm-003/stop?org_id=org-123&project_id=proj-456" \
-H "Content-Type: application/json" \
-d '{"force": false}'`
	seedVMDelete = `curl -X DELETE "http://localhost:8084/api/v1/vms/vm-003?org_id=org-123&project_id=proj-456"`
	// seedVMPlaceholder is the VM id the seed's examples show.
	seedVMPlaceholder = `/vms/vm-003`
)

// example1 is the seed's Example 1 script, cut from the seed itself.
func example1(t *testing.T, seed string) string {
	t.Helper()
	_, rest, ok := strings.Cut(seed, "### Example 1: Deploy VM with Networking\n```bash\n")
	script, _, ok2 := strings.Cut(rest, "\n```")
	if !ok || !ok2 {
		t.Fatal("Example 1 not found in the seed")
	}
	return script
}

// TestSeedPlasmaVMC replays section 4 and Example 1 with curl and jq
// against `photon up` on the seed's ports, in a namespace of its own. The
// seed's image "ubuntu-22.04" is uploaded first (a small raw disk under
// that name: images are named per project); the seed's example id vm-003
// is replaced by the id the create returned.
func TestSeedPlasmaVMC(t *testing.T) {
	needSeedTools(t)
	if _, err := os.Stat("/usr/bin/qemu-system-x86_64"); err != nil {
		t.Skip("qemu-system-x86 is not installed (scripts/install-deps.sh installs it)")
	}
	seed := readSeed(t)
	ns := newSeedNS(t)
	data := t.TempDir()
	startSeedPhoton(t, ns, data)
	t.Cleanup(func() { killUnder(data) })

	t.Run("health", func(t *testing.T) {
		r := replay(t, ns, seed, seedVMHealth)
		wantStatus(t, r, 200)
		if d, _ := r.envelope(t); d["status"] != "ok" || d["service"] != "plasmavmc" {
			t.Errorf("health: %v", d)
		}
	})

	img := filepath.Join(t.TempDir(), "ubuntu-22.04.img")
	if err := os.WriteFile(img, make([]byte, 4<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	up := runInNS(t, ns, `curl -s -H "Expect:" -F name=ubuntu-22.04 -F org_id=org-123 -F project_id=proj-456 -F format=raw -F disk=@`+img+` http://localhost:8084/api/v1/images`)
	wantStatus(t, up, 201)

	var id string
	t.Run("create, get, start, stop, delete", func(t *testing.T) {
		r := replay(t, ns, seed, seedVMCreate)
		wantStatus(t, r, 201)
		d, _ := r.envelope(t)
		id, _ = d["id"].(string)
		if !strings.HasPrefix(id, "vm-") || d["name"] != "app-server-03" || d["state"] != "Creating" || d["cpus"] != 2.0 || d["memory_mb"] != 4096.0 {
			t.Fatalf("create: %v", d)
		}
		waitVMState(t, ns, seed, id, "Stopped")

		r = replay(t, ns, seed, seedVMList)
		wantStatus(t, r, 200)
		if d, _ := r.envelope(t); !strings.Contains(fmt.Sprint(d["vms"]), id) {
			t.Errorf("list: %v", d)
		}
		for _, cmd := range []string{seedVMGet, seedVMStart} {
			wantStatus(t, replay(t, ns, seed, cmd), 404) // the seed's own id, vm-003, is no VM
		}
		wantStatus(t, replayFilled(t, ns, seed, seedVMStart, seedVMPlaceholder, "/vms/"+id), 200)
		waitVMState(t, ns, seed, id, "Running")
		wantStatus(t, replayFilled(t, ns, seed, seedVMStop, seedVMPlaceholder, "/vms/"+id), 200)
		waitVMState(t, ns, seed, id, "Stopped")
		r = replayFilled(t, ns, seed, seedVMDelete, seedVMPlaceholder, "/vms/"+id)
		wantStatus(t, r, 200)
		deadline := time.Now().Add(30 * time.Second)
		for {
			if r := replayFilled(t, ns, seed, seedVMGet, seedVMPlaceholder, "/vms/"+id); fmt.Sprint(r.statuses) == "[404]" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the VM was never deleted")
			}
			time.Sleep(200 * time.Millisecond)
		}
	})

	t.Run("example 1", func(t *testing.T) {
		// Section 6's wallet, which the reservation draws on.
		wantStatus(t, replay(t, ns, seed, seedCSCreateWallet), 201)
		r := runInNS(t, ns, example1(t, seed))
		// 1 VPC, 2 subnet, 3 reserve, 4 create VM (all to jq), 5 start, 6 commit.
		wantStatus(t, r, 201, 201, 201, 201, 200, 200)
		// The script ends with an echo; the documents come before it.
		out := strings.TrimSpace(r.stdout)
		last := out[strings.LastIndex(out, "\n")+1:]
		docs := r
		docs.stdout = strings.TrimSuffix(out, last)
		envs := docs.envelopes(t)
		if len(envs) != 2 {
			t.Fatalf("%d JSON documents, want 2 (steps 5 and 6):\n%s", len(envs), r.stdout)
		}
		var vm, commit map[string]any
		if err := json.Unmarshal(envs[0].Data, &vm); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(envs[1].Data, &commit); err != nil {
			t.Fatal(err)
		}
		rsv, _ := commit["reservation"].(map[string]any)
		if rsv["status"] != "committed" || rsv["actual_amount"] != 4500.0 || rsv["resource_id"] != vm["id"] {
			t.Errorf("commit: %v", commit)
		}
		if !strings.HasPrefix(last, "VM deployed: "+vm["id"].(string)+" in VPC: vpc-") || !strings.Contains(last, "Subnet: subnet-") {
			t.Errorf("last line: %q", last)
		}
		running := waitVMState(t, ns, seed, vm["id"].(string), "Running")
		if running["cpus"] != 4.0 || running["memory_mb"] != 8192.0 {
			t.Errorf("example 1's VM: %v", running)
		}
		// No charge beyond what the client committed.
		w := runInNS(t, ns, seedCSGetWallet)
		if d, _ := w.envelope(t); d["balance"] != 5500.0 || d["reserved"] != 0.0 {
			t.Errorf("wallet after example 1: %v", d)
		}
	})
}

// waitVMState polls the VM (the seed's get, with id) until its state is
// want, and returns it.
func waitVMState(t *testing.T, ns *seedNS, seed, id, want string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		r := replayFilled(t, ns, seed, seedVMGet, seedVMPlaceholder, "/vms/"+id)
		d, _ := r.envelope(t)
		if d["state"] == want {
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("vm %s: %v, want %s", id, d["state"], want)
		}
		time.Sleep(300 * time.Millisecond)
	}
}
