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
		{"POST /api/v1/vms", create(h, s.CreateVM)},
		{"GET /api/v1/vms", list(h, s.ListVMs)},
		{"GET /api/v1/vms/{id}", one(h, s.GetVM)},
		{"DELETE /api/v1/vms/{id}", one(h, s.DeleteVM)},
		{"POST /api/v1/vms/{id}/start", one(h, s.StartVM)},
		{"POST /api/v1/vms/{id}/stop", oneWith(h, s.StopVM)},
		{"POST /api/v1/vms/{id}/reboot", one(h, s.RebootVM)},
		{"GET /api/v1/vms/{id}/console", h.console},
		{"POST /api/v1/vms/{id}/volumes", oneWith(h, s.AttachVolume)},
		{"DELETE /api/v1/vms/{id}/volumes/{volume_id}", one(h, func(ctx context.Context, id, org, project string) (VM, error) {
			return s.DetachVolume(ctx, id, pathValue(ctx, "volume_id"), org, project)
		})},
		{"POST /api/v1/volumes", create(h, s.CreateVolume)},
		{"GET /api/v1/volumes", list(h, s.ListVolumes)},
		{"GET /api/v1/volumes/{id}", one(h, s.GetVolume)},
		{"DELETE /api/v1/volumes/{id}", del(h, s.DeleteVolume)},
		{"POST /api/v1/images", h.uploadImage},
		{"GET /api/v1/images", list(h, s.ListImages)},
		{"GET /api/v1/images/{id}", one(h, s.GetImage)},
		{"DELETE /api/v1/images/{id}", del(h, s.DeleteImage)},
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

// ctx bounds a request's work and carries its credential on to the
// services PlasmaVMC calls (PrismNET, CreditService).
func (h *handler) ctx(r *http.Request) (context.Context, context.CancelFunc) {
	ctx := WithCredential(r.Context(), r.Header.Get("Authorization"))
	return context.WithTimeout(context.WithValue(ctx, requestKey{}, r), h.timeout)
}

type requestKey struct{}

// pathValue is a path parameter of the request ctx serves.
func pathValue(ctx context.Context, name string) string {
	r, _ := ctx.Value(requestKey{}).(*http.Request)
	if r == nil {
		return ""
	}
	return r.PathValue(name)
}

// create serves a POST that creates a resource from its JSON body: 201.
func create[Req, Resp any](h *handler, call func(context.Context, Req) (Resp, error)) rest.Handler {
	return func(r *http.Request) (any, error) {
		if _, err := rest.Query(r); err != nil {
			return nil, err
		}
		var req Req
		if err := rest.Decode(r, &req); err != nil {
			return nil, err
		}
		ctx, cancel := h.ctx(r)
		defer cancel()
		v, err := call(ctx, req)
		if err != nil {
			return nil, err
		}
		return rest.Created(v), nil
	}
}

const (
	defListLimit = 50
	maxListLimit = 1000
)

// list serves a list of a scope (org_id, project_id) with paging.
func list[Resp any](h *handler, call func(ctx context.Context, org, project string, limit int, token string) (Resp, error)) rest.Handler {
	return func(r *http.Request) (any, error) {
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
		return call(ctx, q.Get("org_id"), q.Get("project_id"), limit, q.Get("page_token"))
	}
}

// one serves a read of or an action on one resource whose query may name
// its org and project (which must then be its own) and whose body, if any,
// is an empty object.
func one[Resp any](h *handler, call func(ctx context.Context, id, org, project string) (Resp, error)) rest.Handler {
	return oneWith(h, func(ctx context.Context, id, org, project string, _ struct{}) (Resp, error) {
		return call(ctx, id, org, project)
	})
}

// oneWith is one with a JSON body.
func oneWith[Req, Resp any](h *handler, call func(ctx context.Context, id, org, project string, req Req) (Resp, error)) rest.Handler {
	return func(r *http.Request) (any, error) {
		q, err := rest.Query(r, "org_id", "project_id")
		if err != nil {
			return nil, err
		}
		var req Req
		if err := rest.Decode(r, &req); err != nil {
			return nil, err
		}
		ctx, cancel := h.ctx(r)
		defer cancel()
		return call(ctx, r.PathValue("id"), q.Get("org_id"), q.Get("project_id"), req)
	}
}

// del serves a DELETE of one resource.
func del(h *handler, call func(ctx context.Context, id, org, project string) error) rest.Handler {
	return one(h, func(ctx context.Context, id, org, project string) (Deleted, error) {
		if err := call(ctx, id, org, project); err != nil {
			return Deleted{}, err
		}
		return Deleted{ID: id, Deleted: true}, nil
	})
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
