package plasmavmc

import (
	"context"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/photoncloud/photon/internal/apierr"
	"github.com/photoncloud/photon/internal/auth"
	"github.com/photoncloud/photon/internal/ids"
	"github.com/photoncloud/photon/internal/state"
)

const (
	permVolumesCreate = "plasmavmc.volumes.create"
	permVolumesGet    = "plasmavmc.volumes.get"
	permVolumesList   = "plasmavmc.volumes.list"
	permVolumesDelete = "plasmavmc.volumes.delete"
	permVMsAttach     = "plasmavmc.vms.attach"
	permVMsDetach     = "plasmavmc.vms.detach"
)

// maxVolumeGB bounds a volume; maxVolumes a VM's.
const (
	maxVolumeGB = 16384
	maxVolumes  = 16
)

// CreateVolume records a volume; its node makes the disk when a VM it is
// attached to first starts.
func (s *Service) CreateVolume(ctx context.Context, req CreateVolumeRequest) (Volume, error) {
	switch {
	case req.Name == "":
		return Volume{}, apierr.Validation("name", apierr.Required, "name is required")
	case len(req.Name) > maxNameLen:
		return Volume{}, apierr.Validation("name", apierr.MaxLength, "name must be at most %d characters", maxNameLen)
	case req.SizeGB < 1 || req.SizeGB > maxVolumeGB:
		return Volume{}, rangeErr("size_gb", 1, maxVolumeGB, "size_gb must be from 1 to %d", maxVolumeGB)
	}
	if err := ids.Check("org_id", req.OrgID); err != nil {
		return Volume{}, err
	}
	if err := ids.Check("project_id", req.ProjectID); err != nil {
		return Volume{}, err
	}
	if err := auth.Require(ctx, permVolumesCreate, target(req.OrgID, req.ProjectID)); err != nil {
		return Volume{}, err
	}
	v := Volume{ID: ids.New("vol"), Name: req.Name, OrgID: req.OrgID, ProjectID: req.ProjectID, SizeGB: req.SizeGB,
		Status: VolumeAvailable, CreatedAt: s.now().UTC()}
	rec, err := s.st.vols.CreateOp(v.ProjectID+"/"+v.ID, v)
	if err != nil {
		return Volume{}, err
	}
	own, err := s.st.volOwn.CreateOp(v.ID, owner{OrgID: v.OrgID, ProjectID: v.ProjectID})
	if err != nil {
		return Volume{}, err
	}
	if _, err := state.Commit(ctx, s.st.cli, rec, own); err != nil {
		return Volume{}, err
	}
	return v, nil
}

// volume reads a volume after authorizing perm on it (NOT_FOUND outside
// the caller's scope).
func (s *Service) volume(ctx context.Context, perm, id, org, project string) (state.Item[Volume], error) {
	return findOwned(ctx, s.st.volOwn, s.st.vols, perm, "volume", "volume_id", id, org, project)
}

// GetVolume returns a volume.
func (s *Service) GetVolume(ctx context.Context, id, org, project string) (Volume, error) {
	it, err := s.volume(ctx, permVolumesGet, id, org, project)
	return it.Value, err
}

// ListVolumes lists the volumes of a scope.
func (s *Service) ListVolumes(ctx context.Context, org, project string, limit int, pageToken string) (VolumeList, error) {
	t, err := auth.ListTarget(ctx, permVolumesList, target(org, project))
	if err != nil {
		return VolumeList{}, err
	}
	vols, next, err := state.ListScoped(ctx, s.st.vols, t.OrgID, t.ProjectID, limit, pageToken, nil)
	if err != nil {
		return VolumeList{}, err
	}
	return VolumeList{Volumes: vols, NextPageToken: next}, nil
}

// DeleteVolume deletes a volume that no VM has attached (409 otherwise);
// its node removes the disk.
func (s *Service) DeleteVolume(ctx context.Context, id, org, project string) error {
	it, err := s.volume(ctx, permVolumesDelete, id, org, project)
	if err != nil {
		return err
	}
	if it.Value.Status != VolumeAvailable {
		return &apierr.Error{Code: apierr.CodeFailedPrecondition, Message: "volume " + id + " is attached to " + it.Value.AttachedTo + "; detach it first",
			Details: map[string]any{"kind": "volume", "id": id, "attached_to": it.Value.AttachedTo}}
	}
	_, err = state.Commit(ctx, s.st.cli, s.st.vols.DeleteOp(it.ID, it.ModRevision), s.st.volOwn.DeleteAnyOp(id))
	if c := apierr.CodeOf(err); c == apierr.CodeConflict {
		return apierr.New(apierr.CodeConflict, "volume %s changed meanwhile; retry", id)
	} else if c == apierr.CodeNotFound {
		return apierr.NotFound("volume", id)
	}
	return err
}

// stoppedFor refuses to change a VM's disks unless it is stopped (the
// disks are the QEMU command line's; there is no hot-plug).
func stoppedFor(vm VM, what string) error {
	if vm.Deleting || (vm.State != StateStopped && vm.State != StateCreating && vm.State != StateFailed) || vm.Power == PowerOn {
		return &apierr.Error{Code: apierr.CodeFailedPrecondition, Message: "vm " + vm.ID + " is " + vm.State + "; stop it to " + what,
			Details: map[string]any{"kind": "vm", "id": vm.ID, "state": vm.State}}
	}
	return nil
}

// AttachVolume attaches an available volume of the VM's project to the
// stopped VM; it is its next disk from the next start on.
func (s *Service) AttachVolume(ctx context.Context, id, org, project string, req AttachRequest) (VM, error) {
	for attempt := 0; attempt < maxAttempts; attempt++ {
		vit, err := s.locate(ctx, permVMsAttach, id, org, project)
		if err != nil {
			return VM{}, err
		}
		vm := vit.Value
		vol, err := s.volume(ctx, permVolumesGet, req.VolumeID, "", vm.ProjectID)
		if apierr.CodeOf(err) == apierr.CodeNotFound {
			return VM{}, &apierr.Error{Code: apierr.CodeValidation, Message: "volume " + req.VolumeID + " does not exist in project " + vm.ProjectID,
				Details: map[string]any{"field": "volume_id", "constraint": "exists", "volume_id": req.VolumeID}}
		}
		if err != nil {
			return VM{}, err
		}
		v := vol.Value
		switch {
		case v.AttachedTo == vm.ID:
			return vm, nil
		case v.Status != VolumeAvailable:
			return VM{}, &apierr.Error{Code: apierr.CodeFailedPrecondition, Message: "volume " + v.ID + " is attached to " + v.AttachedTo,
				Details: map[string]any{"kind": "volume", "id": v.ID, "attached_to": v.AttachedTo}}
		case v.Node != "" && v.Node != vm.Node:
			return VM{}, &apierr.Error{Code: apierr.CodeFailedPrecondition, Message: "volume " + v.ID + " lives on node " + v.Node + ", vm " + vm.ID + " on " + vm.Node,
				Details: map[string]any{"kind": "volume", "id": v.ID, "node": v.Node}}
		case len(vm.Volumes) >= maxVolumes:
			return VM{}, apierr.Validation("volume_id", apierr.MaxLength, "a VM has at most %d volumes", maxVolumes)
		}
		if err := stoppedFor(vm, "attach a volume"); err != nil {
			return VM{}, err
		}
		vm.Volumes = append(vm.Volumes, v.ID)
		vm.UpdatedAt = s.now().UTC()
		v.Status, v.AttachedTo, v.Node = VolumeInUse, vm.ID, vm.Node
		if done, err := s.commitAttach(ctx, vit, vm, vol, v); done || err != nil {
			return vm, err
		}
	}
	return VM{}, apierr.New(apierr.CodeUnavailable, "vm %s is changing too fast; retry", id)
}

// DetachVolume detaches a volume from the stopped VM; its data stays.
func (s *Service) DetachVolume(ctx context.Context, id, volID, org, project string) (VM, error) {
	for attempt := 0; attempt < maxAttempts; attempt++ {
		vit, err := s.locate(ctx, permVMsDetach, id, org, project)
		if err != nil {
			return VM{}, err
		}
		vm := vit.Value
		i := indexOf(vm.Volumes, volID)
		if i < 0 {
			return VM{}, apierr.NotFound("volume attachment", volID)
		}
		if err := stoppedFor(vm, "detach a volume"); err != nil {
			return VM{}, err
		}
		vol, err := s.st.vols.Get(ctx, vm.ProjectID+"/"+volID)
		if err != nil {
			return VM{}, err
		}
		vm.Volumes = append(append([]string{}, vm.Volumes[:i]...), vm.Volumes[i+1:]...)
		vm.UpdatedAt = s.now().UTC()
		v := vol.Value
		v.Status, v.AttachedTo = VolumeAvailable, ""
		if done, err := s.commitAttach(ctx, vit, vm, vol, v); done || err != nil {
			return vm, err
		}
	}
	return VM{}, apierr.New(apierr.CodeUnavailable, "vm %s is changing too fast; retry", id)
}

// commitAttach writes the VM and the volume as changed, each compared on
// its revision; false (no error) when either changed meanwhile.
func (s *Service) commitAttach(ctx context.Context, vit state.Item[VM], vm VM, vol state.Item[Volume], v Volume) (bool, error) {
	a, err := s.st.vms.UpdateOp(vit.ID, vm, vit.ModRevision)
	if err != nil {
		return false, err
	}
	b, err := s.st.vols.UpdateOp(vol.ID, v, vol.ModRevision)
	if err != nil {
		return false, err
	}
	_, err = state.Commit(ctx, s.st.cli, a, b)
	if apierr.CodeOf(err) == apierr.CodeConflict {
		return false, nil
	}
	return true, err
}

func indexOf(xs []string, x string) int {
	for i, v := range xs {
		if v == x {
			return i
		}
	}
	return -1
}

// VolumeOf reads a volume for a node's agent (which runs as the node: no
// caller to check); NOT_FOUND once it is deleted.
func VolumeOf(ctx context.Context, cli *clientv3.Client, project, id string) (Volume, error) {
	it, err := newStore(cli).vols.Get(ctx, project+"/"+id)
	return it.Value, err
}

// VolumeGone reports whether the volume id no longer exists (a read
// error is not "gone": a disk is never removed on a doubt).
func VolumeGone(ctx context.Context, cli *clientv3.Client, id string) bool {
	_, err := newStore(cli).volOwn.Get(ctx, id)
	return apierr.CodeOf(err) == apierr.CodeNotFound
}

// releaseVolumesOps are the steps that make a deleted VM's volumes
// available again (their data stays).
func releaseVolumesOps(ctx context.Context, st *store, vm VM) ([]state.Op, error) {
	var ops []state.Op
	for _, id := range vm.Volumes {
		it, err := st.vols.Get(ctx, vm.ProjectID+"/"+id)
		if apierr.CodeOf(err) == apierr.CodeNotFound {
			continue
		}
		if err != nil {
			return nil, err
		}
		v := it.Value
		v.Status, v.AttachedTo = VolumeAvailable, ""
		op, err := st.vols.UpdateOp(it.ID, v, it.ModRevision)
		if err != nil {
			return nil, err
		}
		ops = append(ops, op)
	}
	return ops, nil
}
