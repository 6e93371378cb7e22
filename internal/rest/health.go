package rest

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/photoncloud/photon/internal/apierr"
)

// Check reports whether one dependency of a service works.
type Check func(ctx context.Context) error

// Health is the body of GET /health.
type Health struct {
	Status  string            `json:"status"`
	Service string            `json:"service"`
	Version string            `json:"version"`
	Checks  map[string]string `json:"checks"`
	// Info says how the service runs where that is not a pass or fail
	// (PrismNET's data plane: enabled or disabled, and on which node).
	Info map[string]string `json:"info,omitempty"`
}

// SetHealthInfo makes GET /health carry info() as its "info".
func (rt *Router) SetHealthInfo(info func() map[string]string) { rt.healthInfo = info }

// MountHealth adds GET /health (the envelope; 503 with status "unavailable"
// when a check fails) and GET /metrics (Prometheus exposition of the
// router's registry plus extra gatherers such as etcd's) under prefix.
func (rt *Router) MountHealth(prefix, service, version string, checks map[string]Check, extra ...prometheus.Gatherer) {
	rt.public["GET "+prefix+"/health"] = true
	rt.register("GET "+prefix+"/health", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		defer cancel()
		h := Health{Status: "ok", Service: service, Version: version, Checks: map[string]string{}}
		if rt.healthInfo != nil {
			h.Info = rt.healthInfo()
		}
		for name, check := range checks {
			if err := check(ctx); err != nil {
				h.Status = "unavailable"
				h.Checks[name] = apierr.As(err).Message
				continue
			}
			h.Checks[name] = "ok"
		}
		status := http.StatusOK
		if h.Status != "ok" {
			status = http.StatusServiceUnavailable
		}
		WriteData(w, r, status, h)
	}))
	gatherers := prometheus.Gatherers{rt.reg}
	gatherers = append(gatherers, extra...)
	metrics := promhttp.HandlerFor(gatherers, promhttp.HandlerOpts{})
	rt.register("GET "+prefix+"/metrics", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rt.authn != nil {
			if err := rt.authn.RequireAuthenticated(r); err != nil {
				WriteError(w, r, err)
				return
			}
		}
		metrics.ServeHTTP(w, r)
	}))
}
