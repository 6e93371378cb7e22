// Package plasmavmc is PlasmaVMC's controller: virtual machines kept in
// ChainFire under /photon/plasmavmc/, placed on the hypervisor nodes that
// registered there. It records what a VM's owner asks for (power on or
// off, a reboot, a delete); each node's agent (package hypervisor) runs the
// QEMU processes and writes back what it sees.
package plasmavmc

import (
	"context"
	"log/slog"
	"strconv"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/photoncloud/photon/internal/apierr"
	"github.com/photoncloud/photon/internal/auth"
	"github.com/photoncloud/photon/internal/auth/policy"
	"github.com/photoncloud/photon/internal/ids"
	"github.com/photoncloud/photon/internal/state"
	"github.com/photoncloud/photon/services/plasmavmc/images"
)

// Permissions PlasmaVMC checks: "plasmavmc.vms.<verb>".
const (
	permCreate  = "plasmavmc.vms.create"
	permGet     = "plasmavmc.vms.get"
	permList    = "plasmavmc.vms.list"
	permStart   = "plasmavmc.vms.start"
	permStop    = "plasmavmc.vms.stop"
	permReboot  = "plasmavmc.vms.reboot"
	permDelete  = "plasmavmc.vms.delete"
	permConsole = "plasmavmc.vms.console"
)

// ConsoleReader reads the tail of a VM's serial console where the VM runs.
type ConsoleReader func(ctx context.Context, vm VM, n int) ([]byte, error)

// Service is PlasmaVMC's domain logic. Every method authorizes the caller
// in ctx (internal/auth) before it reads or changes anything.
type Service struct {
	cfg      Config
	st       *store
	now      func() time.Time
	log      *slog.Logger
	console  ConsoleReader
	images   *images.Store // nil without an image dir
	prismnet *peer         // PrismNET's REST API; nil without
	credits  *peer         // CreditService's; nil without
}

// NewService returns PlasmaVMC over cli; console reads consoles (nil: none
// can be read from this process).
func NewService(cfg Config, cli *clientv3.Client, console ConsoleReader) (*Service, error) {
	cfg.Defaults()
	s := &Service{cfg: cfg, st: newStore(cli), now: time.Now, log: slog.Default().With("service", "plasmavmc"), console: console}
	if cfg.PrismNETURL != "" {
		s.prismnet = newPeer(cfg.PrismNETURL)
	}
	if cfg.CreditServiceURL != "" {
		s.credits = newPeer(cfg.CreditServiceURL)
	}
	if cfg.ImageDir != "" {
		var err error
		if s.images, err = images.NewStore(cfg.ImageDir); err != nil {
			return nil, err
		}
	}
	return s, nil
}

const gib = 1 << 30

// maxAttempts bounds the compare-and-swap retries of one change.
const maxAttempts = 50

const maxNameLen = 255

// Hypervisors a VM may ask for: QEMU with KVM where the node can, else
// QEMU's own TCG ("qemu").
var hypervisors = map[string]bool{"kvm": true, "qemu": true}

func (r *CreateVMRequest) validate(cfg Config) error {
	switch {
	case r.Name == "":
		return apierr.Validation("name", apierr.Required, "name is required")
	case len(r.Name) > maxNameLen:
		return apierr.Validation("name", apierr.MaxLength, "name must be at most %d characters", maxNameLen)
	}
	if err := ids.Check("org_id", r.OrgID); err != nil {
		return err
	}
	if err := ids.Check("project_id", r.ProjectID); err != nil {
		return err
	}
	if r.VCPUs < 1 || r.VCPUs > cfg.MaxVCPUs {
		return rangeErr("vcpus", 1, cfg.MaxVCPUs, "vcpus must be from 1 to %d", cfg.MaxVCPUs)
	}
	if r.MemoryMiB < cfg.MinMemoryMiB || r.MemoryMiB > cfg.MaxMemoryMiB {
		return rangeErr("memory_mib", cfg.MinMemoryMiB, cfg.MaxMemoryMiB, "memory_mib must be from %d to %d (MiB)", cfg.MinMemoryMiB, cfg.MaxMemoryMiB)
	}
	if r.Hypervisor == "" {
		r.Hypervisor = "kvm"
	}
	if !hypervisors[r.Hypervisor] {
		return apierr.Validation("hypervisor", apierr.Enum, "hypervisor must be kvm or qemu")
	}
	if len(r.ImageID) > maxNameLen {
		return apierr.Validation("image_id", apierr.MaxLength, "image_id must be at most %d characters", maxNameLen)
	}
	if r.DiskSizeGB < 0 || r.DiskSizeGB > 65536 {
		return rangeErr("disk_size_gb", 0, 65536, "disk_size_gb must be from 0 to 65536")
	}
	return validNetworks(r.Networks)
}

func rangeErr(field string, min, max int, format string, args ...any) error {
	e := apierr.Validation(field, apierr.Range, format, args...)
	e.Details["min"], e.Details["max"] = min, max
	return e
}

func target(org, project string) policy.Target { return policy.Target{OrgID: org, ProjectID: project} }

// CreateVM records a VM and places it on a node with room for it: the
// node's allocation record is updated in the same transaction, so two
// creates never take the same room.
func (s *Service) CreateVM(ctx context.Context, req CreateVMRequest) (VM, error) {
	if err := req.validate(s.cfg); err != nil {
		return VM{}, err
	}
	if err := auth.Require(ctx, permCreate, target(req.OrgID, req.ProjectID)); err != nil {
		return VM{}, err
	}
	var boot *Boot
	var img Image
	if req.ImageID != "" {
		var err error
		if img, boot, err = s.resolveImage(ctx, req.ProjectID, req.ImageID); err != nil {
			return VM{}, err
		}
		if min := (img.VirtualSizeBytes + gib - 1) / gib; req.DiskSizeGB != 0 && int64(req.DiskSizeGB) < min {
			return VM{}, rangeErr("disk_size_gb", int(min), 65536, "disk_size_gb must be at least the image's %d GiB", min)
		}
	}
	now := s.now().UTC()
	vm := VM{Boot: boot, ImageID: img.ID, ID: ids.New("vm"), Name: req.Name, OrgID: req.OrgID, ProjectID: req.ProjectID, State: StateCreating,
		CPUs: req.VCPUs, MemoryMB: req.MemoryMiB, VCPUs: req.VCPUs, MemoryMiB: req.MemoryMiB, Hypervisor: req.Hypervisor,
		DiskSizeGB: req.DiskSizeGB, Power: PowerOff, CreatedAt: now, UpdatedAt: now}
	if err := s.checkQuota(ctx, vm); err != nil {
		return VM{}, err
	}
	if err := s.checkCredit(ctx, vm); err != nil {
		return VM{}, err
	}
	if err := s.createPorts(ctx, &vm, req.Networks); err != nil {
		return VM{}, err
	}
	created, err := s.commitVM(ctx, vm, img)
	if err != nil {
		if len(vm.NICs) > 0 {
			_ = s.deletePorts(ctx, vm.NICs)
		}
		return VM{}, err
	}
	if err := s.bindPorts(ctx, created); err != nil {
		// The VM cannot have its NICs: it goes, with its ports.
		_, _ = s.DeleteVM(ctx, created.ID, "", "")
		return VM{}, err
	}
	return created, nil
}

// commitVM places vm on a node and records it, with the node's allocation
// and the image's use, in one transaction (again when another create took
// the room meanwhile).
func (s *Service) commitVM(ctx context.Context, vm VM, img Image) (VM, error) {
	for attempt := 0; attempt < maxAttempts; attempt++ {
		node, al, err := s.place(ctx, vm)
		if err != nil {
			return VM{}, err
		}
		vm.Node = node
		ops, err := s.allocOps(node, al, vm.VCPUs, vm.MemoryMiB, 1)
		if err != nil {
			return VM{}, err
		}
		rec, err := s.st.vms.CreateOp(vm.ProjectID+"/"+vm.ID, vm)
		if err != nil {
			return VM{}, err
		}
		own, err := s.st.owners.CreateOp(vm.ID, owner{OrgID: vm.OrgID, ProjectID: vm.ProjectID})
		if err != nil {
			return VM{}, err
		}
		ops = append(ops, rec, own)
		if img.ID != "" {
			use, err := s.st.users.CreateOp(img.ID+"/"+vm.ID, ref{})
			if err != nil {
				return VM{}, err
			}
			// The image must still be there: its delete refuses while
			// this index has entries.
			ops = append(ops, use, s.st.images.ExistsOp(img.ProjectID+"/"+img.ID))
		}
		_, err = state.Commit(ctx, s.st.cli, ops...)
		if apierr.CodeOf(err) == apierr.CodeNotFound && img.ID != "" {
			return VM{}, &apierr.Error{Code: apierr.CodeValidation, Message: "image " + img.Name + " was deleted",
				Details: map[string]any{"field": "image_id", "constraint": "exists", "image_id": img.ID}}
		}
		switch c := apierr.CodeOf(err); {
		case err == nil:
			return vm, nil
		case c == apierr.CodeConflict || c == apierr.CodeAlreadyExists:
			continue // another create took room on the node meanwhile
		default:
			return VM{}, err
		}
	}
	return VM{}, apierr.New(apierr.CodeUnavailable, "the nodes are changing too fast; retry")
}

// allocOps changes node's allocation (read at al) by n VMs of vcpus and
// memory each, compare-and-swapped on its revision.
func (s *Service) allocOps(node string, al state.Item[alloc], vcpus, mem, n int) ([]state.Op, error) {
	next := al.Value
	next.VCPUs += n * vcpus
	next.MemoryMiB += n * mem
	next.VMs += n
	if al.ModRevision == 0 {
		op, err := s.st.allocs.CreateOp(node, next)
		return []state.Op{op}, err
	}
	op, err := s.st.allocs.UpdateOp(node, next, al.ModRevision)
	return []state.Op{op}, err
}

// place picks the node with the most free memory that holds vm: 400 when
// no node could ever hold it (more vCPUs than any node gives one VM), 409
// when none has room now.
func (s *Service) place(ctx context.Context, vm VM) (string, state.Item[alloc], error) {
	page, err := s.st.nodes.List(ctx, "", 1000, "")
	if err != nil {
		return "", state.Item[alloc]{}, err
	}
	if len(page.Items) == 0 {
		return "", state.Item[alloc]{}, &apierr.Error{Code: apierr.CodeFailedPrecondition,
			Message: "no hypervisor node is running (PlasmaVMC's agent registers one; it needs QEMU)"}
	}
	var (
		best     string
		bestFree = -1
		bestItem state.Item[alloc]
		maxVCPUs int
		free     []map[string]any
	)
	for _, it := range page.Items {
		n := it.Value
		maxVCPUs = max(maxVCPUs, n.MaxVCPUs)
		al, err := s.st.allocs.Get(ctx, n.Name)
		if apierr.CodeOf(err) == apierr.CodeNotFound {
			al, err = state.Item[alloc]{}, nil
		}
		if err != nil {
			return "", state.Item[alloc]{}, err
		}
		freeCPU, freeMem := n.VCPUs-al.Value.VCPUs, n.MemoryMiB-al.Value.MemoryMiB
		free = append(free, map[string]any{"node": n.Name, "free_vcpus": freeCPU, "free_memory_mib": freeMem})
		if vm.VCPUs <= n.MaxVCPUs && vm.VCPUs <= freeCPU && vm.MemoryMiB <= freeMem && freeMem > bestFree {
			best, bestFree, bestItem = n.Name, freeMem, al
		}
	}
	if vm.VCPUs > maxVCPUs {
		return "", state.Item[alloc]{}, rangeErr("vcpus", 1, maxVCPUs, "vcpus must be from 1 to %d (the most any node gives one VM)", maxVCPUs)
	}
	if best == "" {
		return "", state.Item[alloc]{}, &apierr.Error{Code: apierr.CodeFailedPrecondition,
			Message: "no node has room for a VM with " + strconv.Itoa(vm.VCPUs) + " vCPUs and " + strconv.Itoa(vm.MemoryMiB) + " MiB",
			Details: map[string]any{"vcpus": vm.VCPUs, "memory_mib": vm.MemoryMiB, "nodes": free}}
	}
	return best, bestItem, nil
}

// locate reads the VM id after authorizing perm on it: NOT_FOUND both for a
// VM that does not exist and for one outside the caller's scope, or whose
// org or project differs from those the request names.
func (s *Service) locate(ctx context.Context, perm, id, org, project string) (state.Item[VM], error) {
	for _, c := range []struct{ field, v string }{{"id", id}, {"org_id", org}, {"project_id", project}} {
		if c.v == "" && c.field != "id" {
			continue
		}
		if err := ids.Check(c.field, c.v); err != nil {
			return state.Item[VM]{}, err
		}
	}
	return findOwned(ctx, s.st.owners, s.st.vms, perm, "vm", "id", id, org, project)
}

// findOwned reads the resource id of kind (checked as field) from items
// after authorizing perm on it through its owner record: NOT_FOUND both
// for one that does not exist and for one outside the caller's scope, or
// whose org or project differs from those the request names (each
// optional).
func findOwned[T any](ctx context.Context, owners *state.Collection[owner], items *state.Collection[T], perm, kind, field, id, org, project string) (state.Item[T], error) {
	var none state.Item[T]
	if _, err := auth.Caller(ctx); err != nil {
		return none, err
	}
	if err := ids.Check(field, id); err != nil {
		return none, err
	}
	it, err := owners.GetLocal(ctx, id)
	if apierr.CodeOf(err) == apierr.CodeNotFound {
		return none, apierr.NotFound(kind, id)
	}
	if err != nil {
		return none, err
	}
	o := it.Value
	if err := auth.RequireOn(ctx, perm, target(o.OrgID, o.ProjectID), kind, id); err != nil {
		return none, err
	}
	if (org != "" && org != o.OrgID) || (project != "" && project != o.ProjectID) {
		return none, apierr.NotFound(kind, id)
	}
	v, err := items.Get(ctx, o.ProjectID+"/"+id)
	if apierr.CodeOf(err) == apierr.CodeNotFound {
		return none, apierr.NotFound(kind, id)
	}
	return v, err
}

// GetVM returns a VM.
func (s *Service) GetVM(ctx context.Context, id, org, project string) (VM, error) {
	it, err := s.locate(ctx, permGet, id, org, project)
	return it.Value, err
}

// ListVMs lists the VMs of the org and project named (or, naming neither,
// of the caller's scope).
func (s *Service) ListVMs(ctx context.Context, org, project string, limit int, pageToken string) (VMList, error) {
	for _, c := range []struct{ field, v string }{{"org_id", org}, {"project_id", project}} {
		if c.v != "" {
			if err := ids.Check(c.field, c.v); err != nil {
				return VMList{}, err
			}
		}
	}
	t, err := auth.ListTarget(ctx, permList, target(org, project))
	if err != nil {
		return VMList{}, err
	}
	vms, next, err := state.ListScoped(ctx, s.st.vms, t.OrgID, t.ProjectID, limit, pageToken, nil)
	if err != nil {
		return VMList{}, err
	}
	return VMList{VMs: vms, NextPageToken: next}, nil
}

// change applies fn to the VM (read after authorizing perm) with a
// compare-and-swap, again on a concurrent change (the node reporting).
// fn returns false to leave the VM as it is.
func (s *Service) change(ctx context.Context, perm, id, org, project string, fn func(*VM) (bool, error)) (VM, error) {
	for attempt := 0; attempt < maxAttempts; attempt++ {
		it, err := s.locate(ctx, perm, id, org, project)
		if err != nil {
			return VM{}, err
		}
		vm := it.Value
		changed, err := fn(&vm)
		if err != nil || !changed {
			return vm, err
		}
		vm.UpdatedAt = s.now().UTC()
		_, err = s.st.vms.Update(ctx, it.ID, vm, it.ModRevision)
		switch apierr.CodeOf(err) {
		case "":
			return vm, nil
		case apierr.CodeConflict:
			continue
		case apierr.CodeNotFound:
			return VM{}, apierr.NotFound("vm", id)
		default:
			return VM{}, err
		}
	}
	return VM{}, apierr.New(apierr.CodeUnavailable, "vm %s is changing too fast; retry", id)
}

func deleting(id string) error {
	return &apierr.Error{Code: apierr.CodeFailedPrecondition, Message: "vm " + id + " is being deleted",
		Details: map[string]any{"kind": "vm", "id": id, "state": StateDeleting}}
}

// StartVM powers a VM on. Starting a running (or starting) VM changes
// nothing; a VM being deleted cannot start (409).
func (s *Service) StartVM(ctx context.Context, id, org, project string) (VM, error) {
	return s.change(ctx, permStart, id, org, project, func(vm *VM) (bool, error) {
		switch {
		case vm.Deleting:
			return false, deleting(id)
		case vm.Power == PowerOn && vm.State != StateFailed:
			return false, nil
		}
		vm.Power, vm.ForceStop, vm.LastError = PowerOn, false, ""
		if vm.State != StateCreating {
			vm.State = StateStarting
		}
		return true, nil
	})
}

// StopVM powers a VM off: an ACPI power-down the node escalates to a hard
// stop after its grace period, or at once with force. Stopping a stopped
// VM changes nothing; force on a stopping VM escalates it.
func (s *Service) StopVM(ctx context.Context, id, org, project string, req StopRequest) (VM, error) {
	return s.change(ctx, permStop, id, org, project, func(vm *VM) (bool, error) {
		switch {
		case vm.Deleting:
			return false, deleting(id)
		case vm.Power == PowerOff && (!req.Force || vm.ForceStop || vm.State != StateStopping):
			return false, nil
		}
		vm.Power, vm.ForceStop = PowerOff, req.Force
		if vm.State != StateCreating && vm.State != StateStopped {
			vm.State = StateStopping
		}
		return true, nil
	})
}

// RebootVM resets a running VM (409 unless it is Running).
func (s *Service) RebootVM(ctx context.Context, id, org, project string) (VM, error) {
	return s.change(ctx, permReboot, id, org, project, func(vm *VM) (bool, error) {
		if vm.Deleting || vm.State != StateRunning || vm.Power != PowerOn {
			return false, &apierr.Error{Code: apierr.CodeFailedPrecondition, Message: "vm " + id + " is " + vm.State + "; only a Running VM can reboot",
				Details: map[string]any{"kind": "vm", "id": id, "state": vm.State}}
		}
		vm.RebootSeq++
		return true, nil
	})
}

// DeleteVM marks a VM for deletion: its node stops its QEMU, removes its
// disks and then its record (and the room it took). Deleting twice changes
// nothing.
func (s *Service) DeleteVM(ctx context.Context, id, org, project string) (VM, error) {
	it, err := s.locate(ctx, permDelete, id, org, project)
	if err != nil {
		return VM{}, err
	}
	if len(it.Value.NICs) > 0 && s.prismnet != nil {
		if err := s.deletePorts(ctx, it.Value.NICs); err != nil {
			return VM{}, err
		}
	}
	return s.change(ctx, permDelete, id, org, project, func(vm *VM) (bool, error) {
		if vm.Deleting {
			return false, nil
		}
		vm.Deleting, vm.Power, vm.ForceStop, vm.State = true, PowerOff, true, StateDeleting
		return true, nil
	})
}

// maxConsole bounds one console read.
const maxConsole = 1 << 20

// ConsoleOf returns the last n bytes (default 64 KiB) of a VM's serial
// console.
func (s *Service) ConsoleOf(ctx context.Context, id, org, project string, n int) (Console, error) {
	if n < 0 || n > maxConsole {
		return Console{}, rangeErr("bytes", 1, maxConsole, "bytes must be from 1 to %d", maxConsole)
	}
	if n == 0 {
		n = 64 << 10
	}
	it, err := s.locate(ctx, permConsole, id, org, project)
	if err != nil {
		return Console{}, err
	}
	if s.console == nil {
		return Console{}, apierr.New(apierr.CodeUnavailable, "no console reader for node %s in this process", it.Value.Node)
	}
	b, err := s.console(ctx, it.Value, n)
	if err != nil {
		return Console{}, err
	}
	return Console{ID: id, Output: string(b), Bytes: len(b)}, nil
}

// Healthy reports whether the store answers.
func (s *Service) Healthy(ctx context.Context) error { return state.Ping(ctx, s.st.cli) }
