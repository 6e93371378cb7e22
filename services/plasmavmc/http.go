package plasmavmc

import (
	"context"
	"io"
	"mime/multipart"
	"net/http"
	"strconv"
	"time"

	"github.com/photoncloud/photon/internal/apierr"
	"github.com/photoncloud/photon/internal/auth"
	"github.com/photoncloud/photon/internal/rest"
)

// handler is PlasmaVMC's REST transport: decode, call the Service, return.
type handler struct {
	svc     *Service
	timeout time.Duration
}

type route struct {
	pattern string
	serve   rest.Handler
}

func (h *handler) routes() []route {
	s := h.svc
	return []route{
		{"POST /api/v1/vms", h.create},
		{"GET /api/v1/vms", h.list},
		{"GET /api/v1/vms/{id}", h.one(s.GetVM)},
		{"DELETE /api/v1/vms/{id}", h.one(s.DeleteVM)},
		{"POST /api/v1/vms/{id}/start", h.one(s.StartVM)},
		{"POST /api/v1/vms/{id}/stop", h.stop},
		{"POST /api/v1/vms/{id}/reboot", h.one(s.RebootVM)},
		{"GET /api/v1/vms/{id}/console", h.console},
		{"POST /api/v1/vms/{id}/volumes", h.attach},
		{"DELETE /api/v1/vms/{id}/volumes/{volume_id}", h.detach},
		{"POST /api/v1/volumes", h.createVolume},
		{"GET /api/v1/volumes", h.listVolumes},
		{"GET /api/v1/volumes/{id}", h.getVolume},
		{"DELETE /api/v1/volumes/{id}", h.deleteVolume},
		{"POST /api/v1/images", h.uploadImage},
		{"GET /api/v1/images", h.listImages},
		{"GET /api/v1/images/{id}", h.getImage},
		{"DELETE /api/v1/images/{id}", h.deleteImage},
	}
}

// Routes lists every REST route of PlasmaVMC.
func Routes() []string {
	out := []string{"GET /health", "GET /metrics"}
	for _, r := range (&handler{}).routes() {
		out = append(out, r.pattern)
	}
	return out
}

// NewHandler returns PlasmaVMC's REST API; authn authenticates every
// request and every route but /health needs a caller.
func NewHandler(svc *Service, authn rest.Authn) http.Handler {
	h := &handler{svc: svc, timeout: svc.cfg.RequestTimeout}
	rt := rest.NewRouter("plasmavmc", nil)
	rt.SetMaxBody(svc.cfg.MaxBodyBytes)
	rt.SetRouteMaxBody("POST /api/v1/images", svc.cfg.MaxImageBytes)
	rt.SetAuthn(authn)
	rt.MountHealth("", "plasmavmc", svc.cfg.Version, map[string]rest.Check{"store": svc.Healthy})
	for _, r := range h.routes() {
		rt.Handle(r.pattern, auth.Authenticated(r.serve))
	}
	return rt
}

// ctx bounds a request's work and carries its credential on to PrismNET.
func (h *handler) ctx(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(WithCredential(r.Context(), r.Header.Get("Authorization")), h.timeout)
}

func (h *handler) create(r *http.Request) (any, error) {
	if _, err := rest.Query(r); err != nil {
		return nil, err
	}
	var req CreateVMRequest
	if err := rest.Decode(r, &req); err != nil {
		return nil, err
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	vm, err := h.svc.CreateVM(ctx, req)
	if err != nil {
		return nil, err
	}
	return rest.Created(vm), nil
}

const (
	defListLimit = 50
	maxListLimit = 1000
)

func (h *handler) list(r *http.Request) (any, error) {
	q, err := rest.Query(r, "org_id", "project_id", "limit", "page_token")
	if err != nil {
		return nil, err
	}
	limit, err := rest.Limit(q, defListLimit, maxListLimit)
	if err != nil {
		return nil, err
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	return h.svc.ListVMs(ctx, q.Get("org_id"), q.Get("project_id"), limit, q.Get("page_token"))
}

// one serves an action on one VM whose query may name its org and project
// (which must then be its own) and whose body, if any, is an empty object.
func (h *handler) one(call func(ctx context.Context, id, org, project string) (VM, error)) rest.Handler {
	return func(r *http.Request) (any, error) {
		q, err := rest.Query(r, "org_id", "project_id")
		if err != nil {
			return nil, err
		}
		if err := rest.Decode(r, &struct{}{}); err != nil {
			return nil, err
		}
		ctx, cancel := h.ctx(r)
		defer cancel()
		return call(ctx, r.PathValue("id"), q.Get("org_id"), q.Get("project_id"))
	}
}

func (h *handler) stop(r *http.Request) (any, error) {
	q, err := rest.Query(r, "org_id", "project_id")
	if err != nil {
		return nil, err
	}
	var req StopRequest
	if err := rest.Decode(r, &req); err != nil {
		return nil, err
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	return h.svc.StopVM(ctx, r.PathValue("id"), q.Get("org_id"), q.Get("project_id"), req)
}

func (h *handler) console(r *http.Request) (any, error) {
	q, err := rest.Query(r, "org_id", "project_id", "bytes")
	if err != nil {
		return nil, err
	}
	n := 0
	if b := q.Get("bytes"); b != "" {
		if n, err = strconv.Atoi(b); err != nil || n < 1 {
			return nil, apierr.Validation("bytes", apierr.Format, "bytes must be a positive integer")
		}
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	return h.svc.ConsoleOf(ctx, r.PathValue("id"), q.Get("org_id"), q.Get("project_id"), n)
}

// uploadImage serves POST /api/v1/images: multipart/form-data whose
// fields (name, org_id, project_id, format, cmdline) come first, then the
// files (disk; or kernel and initrd), streamed to disk as they arrive.
func (h *handler) uploadImage(r *http.Request) (any, error) {
	if _, err := rest.Query(r); err != nil {
		return nil, err
	}
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, &apierr.Error{Code: apierr.CodeUnsupportedMediaType,
			Message: "an image upload is multipart/form-data: fields name, org_id, project_id, format (raw, qcow2, kernel), cmdline; then files disk, or kernel and initrd"}
	}
	var u ImageUpload
	fields := map[string]*string{"name": &u.Name, "org_id": &u.OrgID, "project_id": &u.ProjectID, "format": &u.Format, "cmdline": &u.Cmdline}
	var first *multipart.Part
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, apierr.Wrap(apierr.CodeInvalidJSON, err, "reading the multipart body")
		}
		if p.FileName() != "" {
			first = p
			break
		}
		dst, ok := fields[p.FormName()]
		if !ok {
			return nil, apierr.Validation(p.FormName(), apierr.Unknown, "unknown field %q", p.FormName())
		}
		b, err := io.ReadAll(io.LimitReader(p, 8<<10))
		if err != nil {
			return nil, apierr.Wrap(apierr.CodeInvalidJSON, err, "reading field %s", p.FormName())
		}
		*dst = string(b)
	}
	files := func() (string, io.Reader, error) {
		if first != nil {
			p := first
			first = nil
			return p.FormName(), p, nil
		}
		p, err := mr.NextPart()
		if err != nil {
			return "", nil, err
		}
		if p.FileName() == "" {
			return "", nil, apierr.Validation(p.FormName(), apierr.Format, "fields come before the files")
		}
		return p.FormName(), p, nil
	}
	// Uploads take as long as the bytes take: no request timeout.
	img, err := h.svc.CreateImage(r.Context(), u, files)
	if err != nil {
		return nil, err
	}
	return rest.Created(img), nil
}

func (h *handler) listImages(r *http.Request) (any, error) {
	q, err := rest.Query(r, "org_id", "project_id", "limit", "page_token")
	if err != nil {
		return nil, err
	}
	limit, err := rest.Limit(q, defListLimit, maxListLimit)
	if err != nil {
		return nil, err
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	return h.svc.ListImages(ctx, q.Get("org_id"), q.Get("project_id"), limit, q.Get("page_token"))
}

func (h *handler) getImage(r *http.Request) (any, error) {
	q, err := rest.Query(r, "org_id", "project_id")
	if err != nil {
		return nil, err
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	return h.svc.GetImage(ctx, r.PathValue("id"), q.Get("org_id"), q.Get("project_id"))
}

func (h *handler) deleteImage(r *http.Request) (any, error) {
	q, err := rest.Query(r, "org_id", "project_id")
	if err != nil {
		return nil, err
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	id := r.PathValue("id")
	if err := h.svc.DeleteImage(ctx, id, q.Get("org_id"), q.Get("project_id")); err != nil {
		return nil, err
	}
	return Deleted{ID: id, Deleted: true}, nil
}

func (h *handler) attach(r *http.Request) (any, error) {
	q, err := rest.Query(r, "org_id", "project_id")
	if err != nil {
		return nil, err
	}
	var req AttachRequest
	if err := rest.Decode(r, &req); err != nil {
		return nil, err
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	return h.svc.AttachVolume(ctx, r.PathValue("id"), q.Get("org_id"), q.Get("project_id"), req)
}

func (h *handler) detach(r *http.Request) (any, error) {
	q, err := rest.Query(r, "org_id", "project_id")
	if err != nil {
		return nil, err
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	return h.svc.DetachVolume(ctx, r.PathValue("id"), r.PathValue("volume_id"), q.Get("org_id"), q.Get("project_id"))
}

func (h *handler) createVolume(r *http.Request) (any, error) {
	if _, err := rest.Query(r); err != nil {
		return nil, err
	}
	var req CreateVolumeRequest
	if err := rest.Decode(r, &req); err != nil {
		return nil, err
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	v, err := h.svc.CreateVolume(ctx, req)
	if err != nil {
		return nil, err
	}
	return rest.Created(v), nil
}

func (h *handler) listVolumes(r *http.Request) (any, error) {
	q, err := rest.Query(r, "org_id", "project_id", "limit", "page_token")
	if err != nil {
		return nil, err
	}
	limit, err := rest.Limit(q, defListLimit, maxListLimit)
	if err != nil {
		return nil, err
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	return h.svc.ListVolumes(ctx, q.Get("org_id"), q.Get("project_id"), limit, q.Get("page_token"))
}

func (h *handler) getVolume(r *http.Request) (any, error) {
	q, err := rest.Query(r, "org_id", "project_id")
	if err != nil {
		return nil, err
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	return h.svc.GetVolume(ctx, r.PathValue("id"), q.Get("org_id"), q.Get("project_id"))
}

func (h *handler) deleteVolume(r *http.Request) (any, error) {
	q, err := rest.Query(r, "org_id", "project_id")
	if err != nil {
		return nil, err
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	id := r.PathValue("id")
	if err := h.svc.DeleteVolume(ctx, id, q.Get("org_id"), q.Get("project_id")); err != nil {
		return nil, err
	}
	return Deleted{ID: id, Deleted: true}, nil
}
