package plasmavmc_test

import (
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/photoncloud/photon/internal/platform"
	"github.com/photoncloud/photon/internal/testutil/vmimage"
	"github.com/photoncloud/photon/services/plasmavmc"
)

// upload sends an image as multipart/form-data, streaming the files.
func (e *vmEnv) upload(fields map[string]string, files map[string]string) (int, json.RawMessage) {
	e.t.Helper()
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		err := func() error {
			for _, k := range []string{"name", "org_id", "project_id", "format", "cmdline"} {
				if v, ok := fields[k]; ok {
					if err := mw.WriteField(k, v); err != nil {
						return err
					}
				}
			}
			for _, k := range []string{"disk", "kernel", "initrd"} {
				path, ok := files[k]
				if !ok {
					continue
				}
				w, err := mw.CreateFormFile(k, filepath.Base(path))
				if err != nil {
					return err
				}
				f, err := os.Open(path)
				if err != nil {
					return err
				}
				_, err = io.Copy(w, f)
				f.Close()
				if err != nil {
					return err
				}
			}
			return mw.Close()
		}()
		pw.CloseWithError(err)
	}()
	r, _ := http.NewRequest("POST", e.base+"/api/v1/images", pr)
	r.Header.Set("Content-Type", mw.FormDataContentType())
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
		e.t.Fatal(err)
	}
	if env.Error != nil {
		return resp.StatusCode, env.Error
	}
	return resp.StatusCode, env.Data
}

func (e *vmEnv) image(fields, files map[string]string) plasmavmc.Image {
	e.t.Helper()
	code, data := e.upload(fields, files)
	if code != 201 {
		e.t.Fatalf("upload: %d %s", code, data)
	}
	var img plasmavmc.Image
	if err := json.Unmarshal(data, &img); err != nil {
		e.t.Fatal(err)
	}
	return img
}

// waitConsole polls the VM's console until it shows want.
func (e *vmEnv) waitConsole(id, want string) string {
	e.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		code, data := e.call("GET", "/api/v1/vms/"+id+"/console", nil)
		var c plasmavmc.Console
		_ = json.Unmarshal(data, &c)
		if code == 200 && strings.Contains(c.Output, want) {
			return c.Output
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("console of %s never showed %q (%d):\n%s", id, want, code, c.Output)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// A kernel+initrd image built from Debian packages boots: create → start
// → the guest's marker on the serial console → a graceful (ACPI) stop the
// guest obeys → delete, with the disk and the QEMU process gone. The image
// cannot be deleted while the VM uses it.
func TestBootFromImage(t *testing.T) {
	// A grace long enough that a guest still starting acpid when the
	// first press comes gets the next one.
	e := startVMs(t, func(c *platform.Config) { c.HypervisorConfig.StopGrace = 15 * time.Second })
	guest := vmimage.ForTest(t)
	img := e.image(map[string]string{"name": "test-guest", "org_id": "org-123", "project_id": "proj-456", "format": "kernel",
		"cmdline": vmimage.Append(nil)}, map[string]string{"kernel": guest.Kernel, "initrd": guest.Initrd})
	if img.Format != "kernel" || len(img.SHA256) != 64 || img.SizeBytes == 0 || img.InitrdSizeBytes == 0 {
		t.Fatalf("image: %+v", img)
	}
	// By name, as the seed names its image.
	vm := e.vm(201, "POST", "/api/v1/vms", map[string]any{"name": "booted", "org_id": "org-123", "project_id": "proj-456",
		"vcpus": 1, "memory_mib": 256, "image_id": "test-guest", "disk_size_gb": 1})
	if vm.ImageID != img.ID {
		t.Fatalf("vm image %q, want %q", vm.ImageID, img.ID)
	}
	e.waitState(vm.ID, plasmavmc.StateStopped)
	if _, err := os.Stat(filepath.Join(e.dir, vm.ID, "root.qcow2")); err != nil {
		t.Fatalf("root disk: %v", err)
	}
	e.vm(200, "POST", "/api/v1/vms/"+vm.ID+"/start", nil)
	run := e.waitState(vm.ID, plasmavmc.StateRunning)
	e.waitConsole(vm.ID, vmimage.Marker)

	e.fails(409, "FAILED_PRECONDITION", "", "DELETE", "/api/v1/images/"+img.ID, nil)

	began := time.Now()
	e.vm(200, "POST", "/api/v1/vms/"+vm.ID+"/stop", map[string]any{"force": false})
	e.waitState(vm.ID, plasmavmc.StateStopped)
	if d := time.Since(began); d >= 15*time.Second {
		t.Errorf("the graceful stop took %v: the guest did not power off on ACPI before the grace ran out", d)
	}
	if out := e.waitConsole(vm.ID, "PHOTON-POWEROFF"); !strings.Contains(out, vmimage.Marker) {
		t.Errorf("console after the stop:\n%s", out)
	}
	if alive(run.PID) {
		t.Fatal("qemu alive after stop")
	}
	e.vm(200, "DELETE", "/api/v1/vms/"+vm.ID, nil)
	deadline := time.Now().Add(15 * time.Second)
	for code, _ := e.call("GET", "/api/v1/vms/"+vm.ID, nil); code != 404; code, _ = e.call("GET", "/api/v1/vms/"+vm.ID, nil) {
		if time.Now().After(deadline) {
			t.Fatal("vm not deleted")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := os.Stat(filepath.Join(e.dir, vm.ID)); !os.IsNotExist(err) {
		t.Fatalf("vm dir after delete: %v", err)
	}
	if code, data := e.call("DELETE", "/api/v1/images/"+img.ID, nil); code != 200 {
		t.Fatalf("image delete after the vm: %d %s", code, data)
	}
}

// A qcow2 image: the VM's root disk is an overlay backed by it, grown to
// disk_size_gb; an image that is not what it claims is refused.
func TestDiskImageOverlay(t *testing.T) {
	e := startVMs(t)
	dir := t.TempDir()
	disk := filepath.Join(dir, "base.qcow2")
	if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", disk, "64M").CombinedOutput(); err != nil {
		t.Fatalf("qemu-img: %v %s", err, out)
	}
	img := e.image(map[string]string{"name": "base", "org_id": "org-123", "project_id": "proj-456", "format": "qcow2"},
		map[string]string{"disk": disk})
	if img.VirtualSizeBytes != 64<<20 {
		t.Fatalf("virtual size %d", img.VirtualSizeBytes)
	}
	vm := e.vm(201, "POST", "/api/v1/vms", map[string]any{"name": "disky", "org_id": "org-123", "project_id": "proj-456",
		"vcpus": 1, "memory_mib": 128, "image_id": img.ID, "disk_size_gb": 2})
	e.waitState(vm.ID, plasmavmc.StateStopped)
	out, err := exec.Command("qemu-img", "info", "--output=json", filepath.Join(e.dir, vm.ID, "root.qcow2")).Output()
	if err != nil {
		t.Fatal(err)
	}
	var info struct {
		VirtualSize int64  `json:"virtual-size"`
		Backing     string `json:"backing-filename"`
	}
	_ = json.Unmarshal(out, &info)
	if info.VirtualSize != 2<<30 || !strings.HasSuffix(info.Backing, filepath.Join(img.ID, "disk")) {
		t.Fatalf("root disk: %s", out)
	}

	raw := filepath.Join(dir, "raw.img")
	if err := os.WriteFile(raw, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		fields, files map[string]string
		code          int
		field         string
	}{
		{map[string]string{"name": "liar", "org_id": "org-123", "project_id": "proj-456", "format": "qcow2"}, map[string]string{"disk": raw}, 400, "disk"},
		{map[string]string{"name": "base", "org_id": "org-123", "project_id": "proj-456", "format": "qcow2"}, map[string]string{"disk": disk}, 409, "name"},
		{map[string]string{"name": "k", "org_id": "org-123", "project_id": "proj-456", "format": "kernel"}, map[string]string{"kernel": raw}, 400, "initrd"},
		{map[string]string{"name": "f", "org_id": "org-123", "project_id": "proj-456", "format": "iso"}, map[string]string{"disk": raw}, 400, "format"},
		{map[string]string{"org_id": "org-123", "project_id": "proj-456", "format": "raw"}, map[string]string{"disk": raw}, 400, "name"},
	} {
		code, data := e.upload(c.fields, c.files)
		var er struct {
			Details map[string]any `json:"details"`
		}
		_ = json.Unmarshal(data, &er)
		if code != c.code || er.Details["field"] != c.field {
			t.Errorf("upload %v: %d %s, want %d naming %s", c.fields, code, data, c.code, c.field)
		}
	}
	// A disk smaller than its image: 400.
	big := filepath.Join(dir, "big.qcow2")
	if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", big, "3G").CombinedOutput(); err != nil {
		t.Fatalf("qemu-img: %v %s", err, out)
	}
	bigImg := e.image(map[string]string{"name": "big", "org_id": "org-123", "project_id": "proj-456", "format": "qcow2"},
		map[string]string{"disk": big})
	e.fails(400, "VALIDATION_ERROR", "disk_size_gb", "POST", "/api/v1/vms", map[string]any{"name": "small", "org_id": "org-123",
		"project_id": "proj-456", "vcpus": 1, "memory_mib": 128, "image_id": bigImg.ID, "disk_size_gb": 2, "hypervisor": "kvm"})
}
