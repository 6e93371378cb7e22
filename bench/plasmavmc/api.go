package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/photoncloud/photon/internal/testutil/vmimage"
	"github.com/photoncloud/photon/services/plasmavmc"
)

// The project the bench's image and VMs live in (loopback trust: no token).
const (
	org     = "org-bench"
	project = "proj-bench"
)

// rest is PlasmaVMC's REST API as a tokenless loopback client. It remembers
// the VMs it created until their deletion is confirmed, so that none
// outlives the run.
type rest struct {
	hc   *http.Client
	base string

	mu   sync.Mutex
	live map[string]bool
}

// apiError is an error envelope, with its HTTP status.
type apiError struct {
	status int
	body   string
}

func (e *apiError) Error() string { return fmt.Sprintf("HTTP %d: %s", e.status, e.body) }

func isNotFound(err error) bool {
	var ae *apiError
	return errors.As(err, &ae) && ae.status == http.StatusNotFound
}

// call sends one request and decodes the envelope's data into out (if not
// nil); a non-2xx answer is an *apiError.
func (a *rest) call(ctx context.Context, method, path string, body any, out any) error {
	var rd io.Reader = http.NoBody
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	return a.do(req, out)
}

func (a *rest) do(req *http.Request, out any) error {
	resp, err := a.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var env struct {
		Data  json.RawMessage `json:"data"`
		Error json.RawMessage `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
		return fmt.Errorf("%s %s: HTTP %d: %w", req.Method, req.URL.Path, resp.StatusCode, err)
	}
	if resp.StatusCode/100 != 2 {
		return &apiError{status: resp.StatusCode, body: string(env.Error)}
	}
	if out != nil {
		return json.Unmarshal(env.Data, out)
	}
	return nil
}

// upload sends the guest as a kernel+initrd image, streaming the files as
// multipart/form-data.
func (a *rest) upload(ctx context.Context, name string, g vmimage.Image, cmdline string) (plasmavmc.Image, error) {
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		err := func() error {
			for _, kv := range [][2]string{{"name", name}, {"org_id", org}, {"project_id", project}, {"format", plasmavmc.FormatKernel}, {"cmdline", cmdline}} {
				if err := mw.WriteField(kv[0], kv[1]); err != nil {
					return err
				}
			}
			for _, kv := range [][2]string{{"kernel", g.Kernel}, {"initrd", g.Initrd}} {
				w, err := mw.CreateFormFile(kv[0], filepath.Base(kv[1]))
				if err != nil {
					return err
				}
				f, err := os.Open(kv[1])
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
	req, err := http.NewRequestWithContext(ctx, "POST", a.base+"/api/v1/images", pr)
	if err != nil {
		return plasmavmc.Image{}, err
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	var img plasmavmc.Image
	err = a.do(req, &img)
	return img, err
}

// create makes a VM of the image and remembers it for deletion.
func (a *rest) create(ctx context.Context, name, image string, memMiB int) (plasmavmc.VM, error) {
	var vm plasmavmc.VM
	err := a.call(ctx, "POST", "/api/v1/vms", map[string]any{"name": name, "org_id": org, "project_id": project,
		"vcpus": 1, "memory_mib": memMiB, "image_id": image}, &vm)
	if err == nil {
		a.mu.Lock()
		a.live[vm.ID] = true
		a.mu.Unlock()
	}
	return vm, err
}

func (a *rest) start(ctx context.Context, id string) error {
	return a.call(ctx, "POST", "/api/v1/vms/"+id+"/start", nil, nil)
}

func (a *rest) get(ctx context.Context, id string) (plasmavmc.VM, error) {
	var vm plasmavmc.VM
	err := a.call(ctx, "GET", "/api/v1/vms/"+id, nil, &vm)
	return vm, err
}

func (a *rest) console(ctx context.Context, id string) (string, error) {
	var c plasmavmc.Console
	err := a.call(ctx, "GET", "/api/v1/vms/"+id+"/console", nil, &c)
	return c.Output, err
}

// remove deletes the VMs and waits until the API no longer knows them (the
// node has stopped their QEMU and removed their runtime dirs).
func (a *rest) remove(ctx context.Context, ids []string) error {
	var errs []error
	for _, id := range ids {
		if err := a.call(ctx, "DELETE", "/api/v1/vms/"+id, nil, nil); err != nil && !isNotFound(err) {
			errs = append(errs, fmt.Errorf("delete %s: %w", id, err))
		}
	}
	for _, id := range ids {
		for {
			_, err := a.get(ctx, id)
			if isNotFound(err) {
				a.mu.Lock()
				delete(a.live, id)
				a.mu.Unlock()
				break
			}
			if ctx.Err() != nil {
				errs = append(errs, fmt.Errorf("vm %s not gone: %w (last: %v)", id, ctx.Err(), err))
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return errors.Join(errs...)
}

// deleteAll deletes every VM the run made that is not known to be gone.
func (a *rest) deleteAll(stderr io.Writer) error {
	a.mu.Lock()
	ids := make([]string, 0, len(a.live))
	for id := range a.live {
		ids = append(ids, id)
	}
	a.mu.Unlock()
	if len(ids) == 0 {
		return nil
	}
	sort.Strings(ids)
	fmt.Fprintf(stderr, "cleanup: deleting %d VM(s) through the API\n", len(ids))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	return a.remove(ctx, ids)
}
