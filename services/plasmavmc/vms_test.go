// PlasmaVMC's tests drive a whole in-process stack with a hypervisor agent
// running real QEMU (TCG) through real HTTP.
package plasmavmc_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/photoncloud/photon/internal/platform"
	"github.com/photoncloud/photon/internal/testutil"
	"github.com/photoncloud/photon/services/plasmavmc"
	"github.com/photoncloud/photon/services/plasmavmc/hypervisor"
)

type vmEnv struct {
	t    *testing.T
	st   *platform.Stack
	base string
	hc   *http.Client
	dir  string // the agent's runtime dirs
}

// startVMs starts a stack whose hypervisor agent runs QEMU; it skips
// without QEMU.
func startVMs(t *testing.T, tweak ...func(*platform.Config)) *vmEnv {
	t.Helper()
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Skip("qemu-system-x86_64 is not installed (scripts/install-deps.sh installs it)")
	}
	cfg := testutil.StackConfig(t, "")
	cfg.Hypervisor = "on"
	cfg.HypervisorConfig.Node = fmt.Sprintf("hv-%d", os.Getpid())
	cfg.HypervisorConfig.DataDir = filepath.Join(cfg.DataDir, "vms")
	cfg.HypervisorConfig.StopGrace = 2 * time.Second
	cfg.HypervisorConfig.Resync = 500 * time.Millisecond
	for _, f := range tweak {
		f(&cfg)
	}
	st := testutil.StartStackWith(t, cfg)
	e := &vmEnv{t: t, st: st, base: "http://" + st.PlasmaVMC.HTTPAddr(), hc: &http.Client{Timeout: 15 * time.Second},
		dir: cfg.HypervisorConfig.DataDir}
	t.Cleanup(e.hc.CloseIdleConnections)
	// Whatever a failing test leaves running goes.
	t.Cleanup(func() {
		out, _ := exec.Command("pgrep", "-f", "qemu-system.*"+e.dir).Output()
		for _, pid := range strings.Fields(string(out)) {
			_ = exec.Command("kill", "-9", pid).Run()
		}
	})
	return e
}

// call is one request as the loopback admin: the status and the
// envelope's data (or error).
func (e *vmEnv) call(method, path string, body any) (int, json.RawMessage) {
	e.t.Helper()
	var rd *bytes.Reader
	if s, ok := body.(string); ok {
		rd = bytes.NewReader([]byte(s))
	} else if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	r, _ := http.NewRequest(method, e.base+path, rd)
	r.Header.Set("Content-Type", "application/json")
	resp, err := e.hc.Do(r)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var env struct {
		Data  json.RawMessage `json:"data"`
		Error json.RawMessage `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	if env.Error != nil {
		return resp.StatusCode, env.Error
	}
	return resp.StatusCode, env.Data
}

func (e *vmEnv) vm(want int, method, path string, body any) plasmavmc.VM {
	e.t.Helper()
	code, data := e.call(method, path, body)
	if code != want {
		e.t.Fatalf("%s %s: %d, want %d: %s", method, path, code, want, data)
	}
	var vm plasmavmc.VM
	if err := json.Unmarshal(data, &vm); err != nil {
		e.t.Fatal(err)
	}
	return vm
}

// fails checks an error answer: status, code and the field it names.
func (e *vmEnv) fails(want int, code, field, method, path string, body any) {
	e.t.Helper()
	got, data := e.call(method, path, body)
	var er struct {
		Code    string         `json:"code"`
		Details map[string]any `json:"details"`
	}
	_ = json.Unmarshal(data, &er)
	if got != want || er.Code != code || (field != "" && er.Details["field"] != field) {
		e.t.Errorf("%s %s %v: %d %s, want %d %s field %q", method, path, body, got, data, want, code, field)
	}
}

// waitState polls the VM until its state is want.
func (e *vmEnv) waitState(id, want string) plasmavmc.VM {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		vm := e.vm(200, "GET", "/api/v1/vms/"+id, nil)
		if vm.State == want {
			return vm
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("vm %s: %s (%s), want %s", id, vm.State, vm.LastError, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func alive(pid int) bool { return pid > 0 && syscall.Kill(pid, 0) == nil }

func create(name string, vcpus, mem int) map[string]any {
	return map[string]any{"name": name, "org_id": "org-123", "project_id": "proj-456", "vcpus": vcpus, "memory_mib": mem, "hypervisor": "kvm"}
}

// The lifecycle against real QEMU: create → Stopped; start → Running with a
// live process (again: no-op); a graceful stop of a guest that does not
// answer ACPI escalates after the grace; force stops at once; reboot; kill
// -9 of QEMU → Failed; delete removes the process, the runtime dir and the
// record.
func TestLifecycle(t *testing.T) {
	e := startVMs(t)
	vm := e.vm(201, "POST", "/api/v1/vms", create("app-server", 1, 128))
	if vm.State != plasmavmc.StateCreating || vm.CPUs != 1 || vm.MemoryMB != 128 || vm.Node == "" {
		t.Fatalf("created: %+v", vm)
	}
	e.waitState(vm.ID, plasmavmc.StateStopped)
	q := "?org_id=org-123&project_id=proj-456"

	e.vm(200, "POST", "/api/v1/vms/"+vm.ID+"/start"+q, nil)
	run := e.waitState(vm.ID, plasmavmc.StateRunning)
	if !alive(run.PID) || run.Accel != "tcg" {
		t.Fatalf("running: pid %d alive=%v accel %q", run.PID, alive(run.PID), run.Accel)
	}
	if again := e.vm(200, "POST", "/api/v1/vms/"+vm.ID+"/start", nil); again.State != plasmavmc.StateRunning || again.PID != run.PID {
		t.Fatalf("start of a running VM changed it: %+v", again)
	}
	e.vm(200, "POST", "/api/v1/vms/"+vm.ID+"/reboot", nil)

	began := time.Now()
	e.vm(200, "POST", "/api/v1/vms/"+vm.ID+"/stop"+q, map[string]any{"force": false})
	e.waitState(vm.ID, plasmavmc.StateStopped)
	if d := time.Since(began); d < 2*time.Second {
		t.Errorf("graceful stop of a guest without ACPI took %v, less than the 2 s grace", d)
	}
	if alive(run.PID) {
		t.Fatalf("qemu %d still alive after stop", run.PID)
	}
	if again := e.vm(200, "POST", "/api/v1/vms/"+vm.ID+"/stop", map[string]any{"force": false}); again.State != plasmavmc.StateStopped {
		t.Fatalf("stop of a stopped VM: %+v", again)
	}

	e.vm(200, "POST", "/api/v1/vms/"+vm.ID+"/start", nil)
	run = e.waitState(vm.ID, plasmavmc.StateRunning)
	began = time.Now()
	e.vm(200, "POST", "/api/v1/vms/"+vm.ID+"/stop", `{"force": true}`)
	e.waitState(vm.ID, plasmavmc.StateStopped)
	if d := time.Since(began); d > 2*time.Second {
		t.Errorf("a forced stop took %v", d)
	}

	e.vm(200, "POST", "/api/v1/vms/"+vm.ID+"/start", nil)
	run = e.waitState(vm.ID, plasmavmc.StateRunning)
	if err := syscall.Kill(run.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	failed := e.waitState(vm.ID, plasmavmc.StateFailed)
	if failed.LastError == "" || failed.PID != 0 {
		t.Fatalf("failed: %+v", failed)
	}
	e.fails(409, "FAILED_PRECONDITION", "", "POST", "/api/v1/vms/"+vm.ID+"/reboot", nil)

	e.vm(200, "POST", "/api/v1/vms/"+vm.ID+"/start", nil)
	run = e.waitState(vm.ID, plasmavmc.StateRunning)
	del := e.vm(200, "DELETE", "/api/v1/vms/"+vm.ID+q, nil)
	if del.State != plasmavmc.StateDeleting {
		t.Fatalf("delete: %+v", del)
	}
	e.fails(409, "FAILED_PRECONDITION", "", "POST", "/api/v1/vms/"+vm.ID+"/start", nil)
	deadline := time.Now().Add(15 * time.Second)
	for {
		code, _ := e.call("GET", "/api/v1/vms/"+vm.ID, nil)
		if code == 404 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the deleted VM is still there")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if alive(run.PID) {
		t.Errorf("qemu %d alive after delete", run.PID)
	}
	if _, err := os.Stat(filepath.Join(e.dir, vm.ID)); !os.IsNotExist(err) {
		t.Errorf("runtime dir after delete: %v", err)
	}
}

// Bad input answers the seed's envelope, naming the field.
func TestCreateValidation(t *testing.T) {
	e := startVMs(t)
	long := strings.Repeat("n", 256)
	for _, c := range []struct {
		body  map[string]any
		field string
	}{
		{create("", 1, 128), "name"},
		{create(long, 1, 128), "name"},
		{create("x", 0, 128), "vcpus"},
		{create("x", 1, 10), "memory_mib"},
		{map[string]any{"name": "x", "org_id": "org-123", "project_id": "proj-456", "vcpus": 1, "memory_mib": 128, "hypervisor": "xen"}, "hypervisor"},
		{map[string]any{"name": "x", "org_id": "org-123", "project_id": "proj-456", "vcpus": 1, "memory_mib": 128, "image_id": "img-nowhere"}, "image_id"},
		{map[string]any{"name": "x", "org_id": "org-123", "vcpus": 1, "memory_mib": 128}, "project_id"},
	} {
		e.fails(400, "VALIDATION_ERROR", c.field, "POST", "/api/v1/vms", c.body)
	}
	// More vCPUs than the node gives any VM: 400; more than it has room
	// for: 409.
	node := e.st.Hypervisor.Agent().Node()
	e.fails(400, "VALIDATION_ERROR", "vcpus", "POST", "/api/v1/vms", create("x", node.MaxVCPUs+1, 128))
	e.fails(409, "FAILED_PRECONDITION", "", "POST", "/api/v1/vms", create("x", 1, node.MemoryMiB+1))
	e.fails(404, "NOT_FOUND", "", "GET", "/api/v1/vms/vm-nowhere", nil)
}

// Killing the agent leaves QEMU running; a new agent re-attaches and the
// VM stays Running and controllable.
func TestAgentRestartReattaches(t *testing.T) {
	e := startVMs(t)
	vm := e.vm(201, "POST", "/api/v1/vms", create("survivor", 1, 128))
	e.waitState(vm.ID, plasmavmc.StateStopped)
	e.vm(200, "POST", "/api/v1/vms/"+vm.ID+"/start", nil)
	run := e.waitState(vm.ID, plasmavmc.StateRunning)

	if err := e.st.Hypervisor.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	if !alive(run.PID) {
		t.Fatal("qemu died with the agent")
	}
	if err := e.st.Hypervisor.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // a few reconciles
	if got := e.waitState(vm.ID, plasmavmc.StateRunning); got.PID != run.PID {
		t.Fatalf("after the restart: pid %d, was %d", got.PID, run.PID)
	}
	e.vm(200, "POST", "/api/v1/vms/"+vm.ID+"/stop", `{"force": true}`)
	e.waitState(vm.ID, plasmavmc.StateStopped)
	if alive(run.PID) {
		t.Fatal("the re-attached agent did not stop qemu")
	}
}

// Two nodes: each VM goes to the node with the most free memory that holds
// it; when none has room the create is 409 naming every node's free room;
// a deleted VM gives its room back.
func TestPlacementAcrossNodes(t *testing.T) {
	e := startVMs(t)
	first := e.st.Hypervisor.Agent().Node()
	// A second node in the same process, with its own runtime dir and a
	// smaller share of this machine's memory.
	second, err := hypervisor.New(hypervisor.Config{Node: first.Name + "-b", DataDir: filepath.Join(t.TempDir(), "vms"),
		RAMAllocationRatio: 1024 / float64(first.MemoryMiB)}, e.st.ChainFire.Client())
	if err != nil {
		t.Fatal(err)
	}
	if err := second.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = second.Stop(context.Background()) })
	b := second.Node()
	if b.MemoryMiB < 1000 || b.MemoryMiB > 1024 {
		t.Fatalf("second node: %+v", b)
	}
	// The first node's room, less what this test leaves it: all but 700 MiB.
	big := e.vm(201, "POST", "/api/v1/vms", create("filler", 1, first.MemoryMiB-700))
	if big.Node != first.Name {
		t.Fatalf("the filler went to %s", big.Node)
	}
	// 700 free on the first, ~1024 on the second: 600 MiB goes second,
	// then 600 first (700 > ~424), then nothing fits 600.
	for _, want := range []string{b.Name, first.Name} {
		if vm := e.vm(201, "POST", "/api/v1/vms", create("p", 1, 600)); vm.Node != want {
			t.Fatalf("placed on %s, want %s", vm.Node, want)
		}
	}
	code, data := e.call("POST", "/api/v1/vms", create("none", 1, 600))
	if code != 409 || !strings.Contains(string(data), b.Name) || !strings.Contains(string(data), "free_memory_mib") {
		t.Fatalf("no room: %d %s", code, data)
	}
	e.vm(200, "DELETE", "/api/v1/vms/"+big.ID, nil)
	deadline := time.Now().Add(15 * time.Second)
	for {
		if code, _ := e.call("POST", "/api/v1/vms", create("again", 1, 600)); code == 201 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the deleted VM's room never came back")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// A project's quota in CreditService bounds its VMs: past a limit the
// create is 409 QUOTA_EXCEEDED naming it, and nothing is made.
func TestQuota(t *testing.T) {
	e := startVMs(t)
	body := `{"org_id":"org-123","limits":{"vcpus":2,"vms":5}}`
	r, _ := http.NewRequest("PUT", "http://"+e.st.CreditService.HTTPAddr()+"/api/v1/quotas/proj-456", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	resp, err := e.hc.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("set quota: %d", resp.StatusCode)
	}
	e.vm(201, "POST", "/api/v1/vms", create("q1", 1, 128))
	e.vm(201, "POST", "/api/v1/vms", create("q2", 1, 128))
	code, data := e.call("POST", "/api/v1/vms", create("q3", 1, 128))
	if code != 409 || !strings.Contains(string(data), `"QUOTA_EXCEEDED"`) || !strings.Contains(string(data), `"limit":"vcpus"`) {
		t.Fatalf("past the quota: %d %s", code, data)
	}
	if _, d := e.call("GET", "/api/v1/vms?project_id=proj-456", nil); strings.Count(string(d), `"id":"vm-`) != 2 {
		t.Fatalf("vms after the refusal: %s", d)
	}
	// Another project has no quota: it is only the node's room (the two
	// vCPUs this node has are taken) that refuses it.
	other := create("free", 1, 128)
	other["project_id"] = "proj-other"
	e.fails(409, "FAILED_PRECONDITION", "", "POST", "/api/v1/vms", other)
}

// creditCall is one request to CreditService as the loopback admin.
func (e *vmEnv) creditCall(method, path, body string) (int, string) {
	e.t.Helper()
	r, _ := http.NewRequest(method, "http://"+e.st.CreditService.HTTPAddr()+path, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	resp, err := e.hc.Do(r)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String()
}

// meterCharges are the metering charges of vm in the project's wallet.
func (e *vmEnv) meterCharges(project, vm string) []string {
	e.t.Helper()
	code, body := e.creditCall("GET", "/api/v1/wallets/"+project+"/transactions?limit=1000", "")
	if code != 200 {
		e.t.Fatalf("transactions: %d %s", code, body)
	}
	var env struct {
		Data struct {
			Transactions []struct {
				Type, Description, ResourceID string
				Amount                        int64
			} `json:"transactions"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &env); err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, tx := range env.Data.Transactions {
		if tx.Type == "charge" && strings.Contains(tx.Description, vm) {
			out = append(out, tx.Description)
		}
	}
	return out
}

// A wallet that opts into metering pays for each running VM once per
// period — also when the meter runs again in the same period — and a VM it
// cannot pay the first period of is refused with 402.
func TestMetering(t *testing.T) {
	e := startVMs(t, func(c *platform.Config) {
		c.PlasmaVMC.Prices = plasmavmc.Prices{VCPUHour: 3600, Period: time.Second} // 1 per vCPU and second
	})
	for _, p := range []struct{ project, balance string }{{"proj-456", "100"}, {"proj-poor", "0"}} {
		if code, body := e.creditCall("POST", "/api/v1/wallets", `{"project_id":"`+p.project+`","org_id":"org-123","initial_balance":`+p.balance+`}`); code != 201 {
			t.Fatalf("wallet: %d %s", code, body)
		}
		if code, body := e.creditCall("PATCH", "/api/v1/wallets/"+p.project, `{"metering":true}`); code != 200 || !strings.Contains(body, `"metering":true`) {
			t.Fatalf("metering on: %d %s", code, body)
		}
	}
	poor := create("poor", 1, 128)
	poor["project_id"] = "proj-poor"
	e.fails(402, "INSUFFICIENT_CREDIT", "", "POST", "/api/v1/vms", poor)

	vm := e.vm(201, "POST", "/api/v1/vms", create("metered", 1, 128))
	e.waitState(vm.ID, plasmavmc.StateStopped)
	time.Sleep(1500 * time.Millisecond)
	if got := e.meterCharges("proj-456", vm.ID); len(got) != 0 {
		t.Fatalf("a stopped VM was charged: %v", got)
	}
	e.vm(200, "POST", "/api/v1/vms/"+vm.ID+"/start", nil)
	e.waitState(vm.ID, plasmavmc.StateRunning)
	time.Sleep(3 * time.Second)
	// The same period metered again (as by another replica): no new charge.
	now := time.Now()
	if err := e.st.PlasmaVMC.Service().Meter(t.Context(), now); err != nil {
		t.Fatal(err)
	}
	before := len(e.meterCharges("proj-456", vm.ID))
	if err := e.st.PlasmaVMC.Service().Meter(t.Context(), now); err != nil {
		t.Fatal(err)
	}
	charges := e.meterCharges("proj-456", vm.ID)
	if len(charges) != before || len(charges) < 2 {
		t.Fatalf("charges: %d before the repeat, %d after: %v", before, len(charges), charges)
	}
	seen := map[string]bool{}
	for _, c := range charges {
		if seen[c] {
			t.Fatalf("a period charged twice: %v", charges)
		}
		seen[c] = true
	}
	e.vm(200, "POST", "/api/v1/vms/"+vm.ID+"/stop", `{"force": true}`)
	e.waitState(vm.ID, plasmavmc.StateStopped)
	time.Sleep(1500 * time.Millisecond)
	stopped := len(e.meterCharges("proj-456", vm.ID))
	time.Sleep(2 * time.Second)
	if after := len(e.meterCharges("proj-456", vm.ID)); after != stopped {
		t.Fatalf("charged after the stop: %d → %d", stopped, after)
	}
}

// Volumes: created, attached to a stopped VM (its next disk: QEMU gets it
// at the next start), refused while it runs or is in use, detached with its
// data kept, and its disk removed from the node once the volume is deleted.
func TestVolumes(t *testing.T) {
	e := startVMs(t)
	code, data := e.call("POST", "/api/v1/volumes", map[string]any{"name": "data", "org_id": "org-123", "project_id": "proj-456", "size_gb": 1})
	var vol plasmavmc.Volume
	if code != 201 || json.Unmarshal(data, &vol) != nil || vol.Status != plasmavmc.VolumeAvailable {
		t.Fatalf("create volume: %d %s", code, data)
	}
	e.fails(400, "VALIDATION_ERROR", "size_gb", "POST", "/api/v1/volumes", map[string]any{"name": "x", "org_id": "org-123", "project_id": "proj-456", "size_gb": 0})

	vm := e.vm(201, "POST", "/api/v1/vms", create("with-volume", 1, 128))
	e.waitState(vm.ID, plasmavmc.StateStopped)
	att := e.vm(200, "POST", "/api/v1/vms/"+vm.ID+"/volumes", map[string]any{"volume_id": vol.ID})
	if len(att.Volumes) != 1 || att.Volumes[0] != vol.ID {
		t.Fatalf("attached: %v", att.Volumes)
	}
	e.fails(409, "FAILED_PRECONDITION", "", "DELETE", "/api/v1/volumes/"+vol.ID, nil)
	other := e.vm(201, "POST", "/api/v1/vms", create("other", 1, 128))
	e.waitState(other.ID, plasmavmc.StateStopped)
	e.fails(409, "FAILED_PRECONDITION", "", "POST", "/api/v1/vms/"+other.ID+"/volumes", map[string]any{"volume_id": vol.ID})
	e.fails(400, "VALIDATION_ERROR", "volume_id", "POST", "/api/v1/vms/"+other.ID+"/volumes", map[string]any{"volume_id": "vol-nowhere"})

	e.vm(200, "POST", "/api/v1/vms/"+vm.ID+"/start", nil)
	run := e.waitState(vm.ID, plasmavmc.StateRunning)
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", run.PID))
	if err != nil || !strings.Contains(string(cmdline), vol.ID+".qcow2") {
		t.Fatalf("qemu's command line has no volume: %q", cmdline)
	}
	disk := filepath.Join(e.dir, ".volumes", vol.ID+".qcow2")
	if _, err := os.Stat(disk); err != nil {
		t.Fatal(err)
	}
	e.fails(409, "FAILED_PRECONDITION", "", "DELETE", "/api/v1/vms/"+vm.ID+"/volumes/"+vol.ID, nil)

	e.vm(200, "POST", "/api/v1/vms/"+vm.ID+"/stop", `{"force": true}`)
	e.waitState(vm.ID, plasmavmc.StateStopped)
	if det := e.vm(200, "DELETE", "/api/v1/vms/"+vm.ID+"/volumes/"+vol.ID, nil); len(det.Volumes) != 0 {
		t.Fatalf("detached: %v", det.Volumes)
	}
	if code, data := e.call("GET", "/api/v1/volumes/"+vol.ID, nil); code != 200 || !strings.Contains(string(data), `"status":"available"`) {
		t.Fatalf("volume after detach: %d %s", code, data)
	}
	if _, err := os.Stat(disk); err != nil {
		t.Fatalf("the detached volume's disk: %v", err)
	}
	if code, data := e.call("DELETE", "/api/v1/volumes/"+vol.ID, nil); code != 200 {
		t.Fatalf("delete volume: %d %s", code, data)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(disk); os.IsNotExist(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the deleted volume's disk is still on the node")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A VM's networks must name subnets of its project: one that does not
// exist is a bad field (400), another project's is 404; nothing is made.
func TestNetworkValidation(t *testing.T) {
	e := startVMs(t)
	pn := "http://" + e.st.PrismNET.HTTPAddr()
	post := func(path, body string) map[string]any {
		t.Helper()
		resp, err := e.hc.Post(pn+path, "application/json", strings.NewReader(body))
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
	vpc := post("/api/v1/vpcs", `{"name":"v","org_id":"org-123","project_id":"proj-other","cidr_block":"10.9.0.0/16"}`)
	sub := post("/api/v1/subnets", `{"name":"s","vpc_id":"`+vpc["id"].(string)+`","cidr_block":"10.9.1.0/24"}`)
	withNet := func(subnet string) map[string]any {
		b := create("netted", 1, 128)
		b["networks"] = []map[string]any{{"subnet_id": subnet}}
		return b
	}
	e.fails(400, "VALIDATION_ERROR", "networks[0].subnet_id", "POST", "/api/v1/vms", withNet("subnet-nowhere"))
	e.fails(404, "NOT_FOUND", "", "POST", "/api/v1/vms", withNet(sub["id"].(string)))
	b := create("netted", 1, 128)
	b["networks"] = []map[string]any{{"subnet_id": sub["id"], "ip": "not-an-ip"}}
	e.fails(400, "VALIDATION_ERROR", "networks[0].ip", "POST", "/api/v1/vms", b)
	if _, d := e.call("GET", "/api/v1/vms", nil); strings.Contains(string(d), `"id":"vm-`) {
		t.Fatalf("a refused create left a VM: %s", d)
	}
	resp, err := e.hc.Get(pn + "/api/v1/ports?project_id=proj-other")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ports struct {
		Data struct {
			Ports []any `json:"ports"`
		} `json:"data"`
	}
	if json.NewDecoder(resp.Body).Decode(&ports) != nil || len(ports.Data.Ports) != 0 {
		t.Fatalf("a refused create left ports: %v", ports.Data.Ports)
	}
}
