package plasmavmc

import (
	"context"
	"errors"
	"io"
	"strings"

	"github.com/photoncloud/photon/internal/apierr"
	"github.com/photoncloud/photon/internal/auth"
	"github.com/photoncloud/photon/internal/ids"
	"github.com/photoncloud/photon/internal/state"
	"github.com/photoncloud/photon/services/plasmavmc/images"
)

const (
	permImagesCreate = "plasmavmc.images.create"
	permImagesGet    = "plasmavmc.images.get"
	permImagesList   = "plasmavmc.images.list"
	permImagesDelete = "plasmavmc.images.delete"
)

// ImageUpload is an image's metadata, which an upload sends before its
// files.
type ImageUpload struct {
	Name      string
	OrgID     string
	ProjectID string
	Format    string
	Cmdline   string
}

// The files an upload carries, by format.
const (
	fileDisk   = "disk"
	fileKernel = "kernel"
	fileInitrd = "initrd"
)

// ImageFiles reads an upload's files one at a time: the part's name and
// its bytes; io.EOF after the last.
type ImageFiles func() (name string, r io.Reader, err error)

func (u ImageUpload) validate() error {
	switch {
	case u.Name == "":
		return apierr.Validation("name", apierr.Required, "name is required")
	case len(u.Name) > maxNameLen:
		return apierr.Validation("name", apierr.MaxLength, "name must be at most %d characters", maxNameLen)
	case strings.ContainsAny(u.Name, "/\x00"):
		return apierr.Validation("name", apierr.Format, "name must not contain '/'")
	}
	if err := ids.Check("org_id", u.OrgID); err != nil {
		return err
	}
	if err := ids.Check("project_id", u.ProjectID); err != nil {
		return err
	}
	switch u.Format {
	case FormatRaw, FormatQCOW2, FormatKernel:
	case "":
		return apierr.Validation("format", apierr.Required, "format is required (raw, qcow2 or kernel)")
	default:
		return apierr.Validation("format", apierr.Enum, "format must be raw, qcow2 or kernel")
	}
	if len(u.Cmdline) > 4096 {
		return apierr.Validation("cmdline", apierr.MaxLength, "cmdline must be at most 4096 characters")
	}
	if u.Cmdline != "" && u.Format != FormatKernel {
		return apierr.Validation("cmdline", apierr.Format, "cmdline is for kernel images only")
	}
	return nil
}

// CreateImage stores an uploaded image: its files stream to disk (hashed
// on the way) and it is recorded once all are there and a disk image reads
// as the format it claims. The name is unique in the project, so that a
// VM may name its image by name (the seed's "ubuntu-22.04").
func (s *Service) CreateImage(ctx context.Context, u ImageUpload, files ImageFiles) (Image, error) {
	if err := u.validate(); err != nil {
		return Image{}, err
	}
	if err := auth.Require(ctx, permImagesCreate, target(u.OrgID, u.ProjectID)); err != nil {
		return Image{}, err
	}
	if s.images == nil {
		return Image{}, apierr.New(apierr.CodeUnavailable, "this PlasmaVMC keeps no images (no image dir)")
	}
	img := Image{ID: ids.New("img"), Name: u.Name, OrgID: u.OrgID, ProjectID: u.ProjectID, Format: u.Format,
		Status: StatusActive, Cmdline: u.Cmdline, CreatedAt: s.now().UTC()}
	if _, err := s.st.names.Get(ctx, u.ProjectID+"/"+u.Name); err == nil {
		return Image{}, nameTaken(u.Name)
	}
	ok := false
	defer func() {
		if !ok {
			_ = s.images.Remove(img.ID)
		}
	}()
	seen := map[string]bool{}
	for {
		name, r, err := files()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return Image{}, err
		}
		want := map[string]bool{fileDisk: u.Format != FormatKernel, fileKernel: u.Format == FormatKernel, fileInitrd: u.Format == FormatKernel}
		if !want[name] || seen[name] {
			return Image{}, apierr.Validation(name, apierr.Format, "a %s image carries %s; not %q (or not twice)", u.Format, filesOf(u.Format), name)
		}
		seen[name] = true
		n, sum, err := s.images.Put(img.ID, name, r)
		if err != nil {
			return Image{}, uploadErr(err)
		}
		if name == fileInitrd {
			img.InitrdSizeBytes, img.InitrdSHA256 = n, sum
		} else {
			img.SizeBytes, img.SHA256 = n, sum
		}
	}
	for _, f := range strings.Split(filesOf(u.Format), " and ") {
		if !seen[f] {
			return Image{}, apierr.Validation(f, apierr.Required, "a %s image needs %s", u.Format, filesOf(u.Format))
		}
	}
	if u.Format != FormatKernel {
		info, err := images.Inspect(ctx, s.images.Path(img.ID, fileDisk))
		if err != nil || info.Format != u.Format || info.BackingFile != "" {
			return Image{}, apierr.Validation("disk", apierr.Format, "the file is not a standalone %s image (qemu-img reads %q)", u.Format, info.Format)
		}
		img.VirtualSizeBytes = info.VirtualSize
	}
	name, err := s.st.names.CreateOp(u.ProjectID+"/"+u.Name, ref{ID: img.ID})
	if err != nil {
		return Image{}, err
	}
	rec, err := s.st.images.CreateOp(u.ProjectID+"/"+img.ID, img)
	if err != nil {
		return Image{}, err
	}
	own, err := s.st.imgOwn.CreateOp(img.ID, owner{OrgID: img.OrgID, ProjectID: img.ProjectID})
	if err != nil {
		return Image{}, err
	}
	if _, err := state.Commit(ctx, s.st.cli, name, rec, own); err != nil {
		if e := apierr.As(err); e.Code == apierr.CodeAlreadyExists && e.Details["kind"] == "image name" {
			return Image{}, nameTaken(u.Name)
		}
		return Image{}, err
	}
	ok = true
	return img, nil
}

func filesOf(format string) string {
	if format == FormatKernel {
		return fileKernel + " and " + fileInitrd
	}
	return fileDisk
}

func nameTaken(name string) error {
	return &apierr.Error{Code: apierr.CodeAlreadyExists, Message: "an image named " + name + " exists in the project",
		Details: map[string]any{"field": "name", "name": name}}
}

// uploadErr keeps an upload's typed errors (a body over the limit) and
// makes the rest internal.
func uploadErr(err error) error {
	var ae *apierr.Error
	if errors.As(err, &ae) {
		return err
	}
	if strings.Contains(err.Error(), "request body too large") {
		return apierr.New(apierr.CodePayloadTooLarge, "the image exceeds the upload limit")
	}
	return apierr.Wrap(apierr.CodeInternal, err, "storing the image")
}

// image reads an image after authorizing perm on it (NOT_FOUND outside
// the caller's scope, as for VMs).
func (s *Service) image(ctx context.Context, perm, id, org, project string) (state.Item[Image], error) {
	return findOwned(ctx, s.st.imgOwn, s.st.images, perm, "image", "id", id, org, project)
}

// GetImage returns an image.
func (s *Service) GetImage(ctx context.Context, id, org, project string) (Image, error) {
	it, err := s.image(ctx, permImagesGet, id, org, project)
	return it.Value, err
}

// ListImages lists the images of a scope.
func (s *Service) ListImages(ctx context.Context, org, project string, limit int, pageToken string) (ImageList, error) {
	t, err := auth.ListTarget(ctx, permImagesList, target(org, project))
	if err != nil {
		return ImageList{}, err
	}
	imgs, next, err := state.ListScoped(ctx, s.st.images, t.OrgID, t.ProjectID, limit, pageToken, nil)
	if err != nil {
		return ImageList{}, err
	}
	return ImageList{Images: imgs, NextPageToken: next}, nil
}

// DeleteImage deletes an image no VM uses (409 otherwise, checked in the
// delete's own transaction) and its files.
func (s *Service) DeleteImage(ctx context.Context, id, org, project string) error {
	it, err := s.image(ctx, permImagesDelete, id, org, project)
	if err != nil {
		return err
	}
	busy := &apierr.Error{Code: apierr.CodeFailedPrecondition, Message: "image " + id + " is used by VMs; delete them first",
		Details: map[string]any{"kind": "image", "id": id}}
	_, err = state.Commit(ctx, s.st.cli,
		state.NoneUnderOp(s.st.users.Key(id+"/"), busy),
		s.st.images.DeleteOp(it.ID, 0),
		s.st.imgOwn.DeleteAnyOp(id),
		s.st.names.DeleteAnyOp(it.Value.ProjectID+"/"+it.Value.Name))
	if apierr.CodeOf(err) == apierr.CodeNotFound {
		return apierr.NotFound("image", id)
	}
	if err != nil {
		return err
	}
	if s.images != nil {
		_ = s.images.Remove(id)
	}
	return nil
}

// resolveImage finds the image a VM names, by id or by name in the VM's
// project, and how to boot it.
func (s *Service) resolveImage(ctx context.Context, project, idOrName string) (Image, *Boot, error) {
	notFound := &apierr.Error{Code: apierr.CodeValidation, Message: "image " + idOrName + " does not exist in project " + project,
		Details: map[string]any{"field": "image_id", "constraint": "exists", "image_id": idOrName}}
	id := idOrName
	if n, err := s.st.names.Get(ctx, project+"/"+idOrName); err == nil {
		id = n.Value.ID
	}
	it, err := s.st.images.Get(ctx, project+"/"+id)
	if apierr.CodeOf(err) == apierr.CodeNotFound || (err == nil && s.images == nil) {
		return Image{}, nil, notFound
	}
	if err != nil {
		return Image{}, nil, err
	}
	img := it.Value
	b := &Boot{Format: img.Format}
	if img.Format == FormatKernel {
		b.Kernel, b.Initrd, b.Cmdline = s.images.Path(img.ID, fileKernel), s.images.Path(img.ID, fileInitrd), img.Cmdline
	} else {
		b.Disk = s.images.Path(img.ID, fileDisk)
	}
	return img, b, nil
}

// StatusActive is an image ready to boot.
const StatusActive = "active"
