package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/photoncloud/photon/internal/testutil"
	"github.com/photoncloud/photon/internal/testutil/vmimage"
)

// TestPlasmaVMCNetworkedVMs runs the binary as a one-node cloud in a
// namespace of its own: two VMs booted from an uploaded kernel+initrd,
// each with a NIC in one PrismNET subnet, get their ports' addresses by
// DHCP and ping each other (their consoles say so); deleting them deletes
// their ports.
func TestPlasmaVMCNetworkedVMs(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("VMs with networking need root")
	}
	for _, tool := range []string{"ip", "curl", "qemu-system-x86_64"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (scripts/install-deps.sh installs it)", tool)
		}
	}
	guest := vmimage.ForTest(t)
	n := &pnNet{t: t, prefix: fmt.Sprintf("vme%d", os.Getpid()%100000)}
	h := n.ns("h1")
	t.Cleanup(func() { removeRouterNSes(h) })
	data := t.TempDir()
	up := startUp(t, exec.Command("ip", "netns", "exec", h, testutil.PhotonBinary(t), "up", "--data-dir", data, "--node-name", h, "--resync", "1s"),
		func(p *upProcess) bool { return strings.Contains(p.stdout.String(), "admin token in ") })
	t.Cleanup(func() { killUnder(data) })
	if !strings.Contains(up.stdout.String(), "node "+h+" (tcg") {
		t.Errorf("banner does not name the hypervisor node:\n%s", up.stdout)
	}

	vpc := n.api(h, 201, "POST", "/api/v1/vpcs", `{"name":"vm-vpc","org_id":"org-123","project_id":"proj-456","cidr_block":"10.120.0.0/16"}`)
	sub := n.api(h, 201, "POST", "/api/v1/subnets", fmt.Sprintf(`{"name":"vm-subnet","vpc_id":"%s","cidr_block":"10.120.1.0/24"}`, vpc["id"]))
	ips := []string{"10.120.1.10", "10.120.1.11"}
	var vms []map[string]any
	for i, ip := range ips {
		peer := ips[1-i]
		name := fmt.Sprintf("guest-%d", i)
		out, err := n.in(h, "curl", "-s", "-w", "\n%{http_code}", "-F", "name="+name, "-F", "org_id=org-123", "-F", "project_id=proj-456",
			"-F", "format=kernel", "-F", "cmdline="+vmimage.Append(map[string]string{"photon.peer": peer, "photon.peer_timeout": "60"}),
			"-F", "kernel=@"+guest.Kernel, "-F", "initrd=@"+guest.Initrd, "http://127.0.0.1:8084/api/v1/images")
		if err != nil || !strings.HasSuffix(strings.TrimSpace(out), "201") {
			t.Fatalf("upload %s: %v\n%s", name, err, out)
		}
		vm := n.vmAPI(h, 201, "POST", "/api/v1/vms", fmt.Sprintf(`{"name":"vm-%d","org_id":"org-123","project_id":"proj-456","vcpus":1,"memory_mib":256,
			"image_id":"%s","networks":[{"subnet_id":"%s","ip":"%s"}]}`, i, name, sub["id"], ip))
		nics, _ := vm["nics"].([]any)
		if len(nics) != 1 || nics[0].(map[string]any)["ip"] != ip {
			t.Fatalf("vm nics: %v", vm["nics"])
		}
		vms = append(vms, vm)
	}
	for _, vm := range vms {
		n.vmAPI(h, 200, "POST", "/api/v1/vms/"+vm["id"].(string)+"/start", "")
	}
	for i, vm := range vms {
		out := n.waitConsole(h, vm["id"].(string), "PHOTON-PING-")
		if !strings.Contains(out, "PHOTON-DHCP ip="+ips[i]) || !strings.Contains(out, "PHOTON-PING-OK "+ips[1-i]) {
			t.Errorf("vm %d console:\n%s", i, out)
		}
	}
	for _, vm := range vms {
		port := vm["nics"].([]any)[0].(map[string]any)["port_id"].(string)
		if p := n.api(h, 200, "GET", "/api/v1/ports/"+port, ""); p["status"] != "ACTIVE" || p["device_id"] != vm["id"] {
			t.Errorf("port %s: %v", port, p)
		}
		n.vmAPI(h, 200, "DELETE", "/api/v1/vms/"+vm["id"].(string), "")
		n.api(h, 404, "GET", "/api/v1/ports/"+port, "")
	}
}

// vmAPI is api against PlasmaVMC (8084) in host h.
func (n *pnNet) vmAPI(h string, want int, method, path, body string) map[string]any {
	n.t.Helper()
	return n.apiAt(h, "8084", want, method, path, body)
}

// waitConsole polls a VM's console in host h until it shows want.
func (n *pnNet) waitConsole(h, id, want string) string {
	n.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		c := n.vmAPI(h, 200, "GET", "/api/v1/vms/"+id+"/console", "")
		out, _ := c["output"].(string)
		if strings.Contains(out, want) {
			return out
		}
		if time.Now().After(deadline) {
			vm := n.vmAPI(h, 200, "GET", "/api/v1/vms/"+id, "")
			n.t.Fatalf("console of %s (%v, %v) never showed %q:\n%s", id, vm["state"], vm["last_error"], want, out)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// killUnder kills every QEMU whose command line names dir: the VMs a
// test's photon up started, which outlive it by design.
func killUnder(dir string) {
	out, _ := exec.Command("pgrep", "-f", "qemu-system.*"+dir).Output()
	for _, pid := range strings.Fields(string(out)) {
		_ = exec.Command("kill", "-9", pid).Run()
	}
}

// TestPlasmaVMCSurvivesKill9: kill -9 photon up while a VM runs; its QEMU
// lives on, and photon up started again on the same data dir shows the VM
// Running (the same process) and can stop it.
func TestPlasmaVMCSurvivesKill9(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for its namespace")
	}
	for _, tool := range []string{"ip", "curl", "qemu-system-x86_64"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (scripts/install-deps.sh installs it)", tool)
		}
	}
	n := &pnNet{t: t, prefix: fmt.Sprintf("vmk%d", os.Getpid()%100000)}
	h := n.ns("h1")
	t.Cleanup(func() { removeRouterNSes(h) })
	data := t.TempDir()
	t.Cleanup(func() { killUnder(data) })
	start := func() *upProcess {
		return startUp(t, exec.Command("ip", "netns", "exec", h, testutil.PhotonBinary(t), "up", "--data-dir", data, "--node-name", h),
			func(p *upProcess) bool { return strings.Contains(p.stdout.String(), "admin token in ") })
	}
	up := start()
	vm := n.vmAPI(h, 201, "POST", "/api/v1/vms", `{"name":"survivor","org_id":"org-123","project_id":"proj-456","vcpus":1,"memory_mib":128}`)
	id := vm["id"].(string)
	n.waitVM(h, id, "Stopped")
	n.vmAPI(h, 200, "POST", "/api/v1/vms/"+id+"/start", "")
	pid := int(n.waitVM(h, id, "Running")["pid"].(float64))

	if err := up.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-up.done
	if !running(pid) {
		t.Fatalf("qemu %d died with photon up", pid)
	}
	start()
	time.Sleep(2 * time.Second) // the agent re-attaches and reconciles
	if got := n.waitVM(h, id, "Running"); int(got["pid"].(float64)) != pid {
		t.Fatalf("after the restart: %v, want pid %d", got, pid)
	}
	n.vmAPI(h, 200, "POST", "/api/v1/vms/"+id+"/stop", `{"force": true}`)
	n.waitVM(h, id, "Stopped")
	if running(pid) {
		t.Fatalf("qemu %d still runs after the stop", pid)
	}
}

// waitVM polls a VM in host h until its state is want.
func (n *pnNet) waitVM(h, id, want string) map[string]any {
	n.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		vm := n.vmAPI(h, 200, "GET", "/api/v1/vms/"+id, "")
		if vm["state"] == want {
			return vm
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("vm %s: %v (%v), want %s", id, vm["state"], vm["last_error"], want)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// running reports whether pid is a live process: not gone and not a
// zombie (a QEMU orphaned by the kill -9 is reaped by PID 1, which on
// these machines may never do it).
func running(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(b), ')')
	return i > 0 && i+2 < len(b) && b[i+2] != 'Z'
}
