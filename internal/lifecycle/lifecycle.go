// Package lifecycle starts a process's components in dependency order and
// stops them in reverse, so that `photon up` and `photon serve` share one
// way of running services.
package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
)

// Component is one service or server with a start and a stop. Start returns
// once the component serves (or fails); Stop releases everything Start took
// and is called at most once, only after a successful Start.
type Component interface {
	Name() string
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
}

// Group runs components in the order they were added.
type Group struct {
	components []Component
	started    []Component
}

// Add appends c; it starts after every component added before it.
func (g *Group) Add(c Component) { g.components = append(g.components, c) }

// Start starts every component in order. If one fails, those already started
// are stopped in reverse and the error is returned.
func (g *Group) Start(ctx context.Context) error {
	for _, c := range g.components {
		slog.Debug("starting", "component", c.Name())
		if err := c.Start(ctx); err != nil {
			stopErr := g.Stop(context.WithoutCancel(ctx))
			return errors.Join(fmt.Errorf("start %s: %w", c.Name(), err), stopErr)
		}
		g.started = append(g.started, c)
	}
	return nil
}

// Stop stops the started components in reverse order, all of them even if
// some fail, and returns their errors joined.
func (g *Group) Stop(ctx context.Context) error {
	var errs []error
	for i := len(g.started) - 1; i >= 0; i-- {
		c := g.started[i]
		if err := c.Stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop %s: %w", c.Name(), err))
		}
	}
	g.started = nil
	return errors.Join(errs...)
}
