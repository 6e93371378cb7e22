package agent

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Component runs an agent as a lifecycle component: inside `photon up`
// over the process's ChainFire client, or alone (`photon serve
// prismnet-agent`) with its own client of a ChainFire cluster.
type Component struct {
	cfg       Config
	client    func() *clientv3.Client
	endpoints []string
	started   func(*Agent)

	a    *Agent
	own  *clientv3.Client
	errc chan error
	once sync.Once
	err  error
}

// NewComponent runs an agent over the client client returns at Start;
// started, if not nil, is told of the running agent (for /health).
func NewComponent(cfg Config, client func() *clientv3.Client, started func(*Agent)) *Component {
	return &Component{cfg: cfg, client: client, started: started, errc: make(chan error, 1)}
}

// NewStandalone runs an agent with its own client of the ChainFire
// members at endpoints.
func NewStandalone(cfg Config, endpoints []string) (*Component, error) {
	if len(endpoints) == 0 {
		return nil, errors.New("no ChainFire endpoints")
	}
	return &Component{cfg: cfg, endpoints: endpoints, errc: make(chan error, 1)}, nil
}

// Name names the component.
func (c *Component) Name() string { return "prismnet-agent" }

// Start connects (standalone), registers the node and starts reconciling.
func (c *Component) Start(ctx context.Context) error {
	cli := (*clientv3.Client)(nil)
	if c.client != nil {
		cli = c.client()
	} else {
		var err error
		cli, err = clientv3.New(clientv3.Config{Endpoints: c.endpoints, DialTimeout: 5 * time.Second, Context: context.WithoutCancel(ctx)})
		if err != nil {
			return fmt.Errorf("chainfire client: %w", err)
		}
		c.own = cli
	}
	a, err := New(c.cfg, cli)
	if err == nil {
		err = a.Start(ctx)
	}
	if err != nil {
		if c.own != nil {
			c.own.Close()
		}
		return fmt.Errorf("prismnet agent: %w", err)
	}
	c.a = a
	if c.started != nil {
		c.started(a)
	}
	return nil
}

// Stop stops the agent (the kernel keeps its state). A second call does
// nothing.
func (c *Component) Stop(ctx context.Context) error {
	c.once.Do(func() {
		if c.a != nil {
			c.err = c.a.Stop(ctx)
		}
		if c.own != nil {
			c.err = errors.Join(c.err, c.own.Close())
		}
	})
	return c.err
}

// Err never reports: the agent survives store outages by retrying.
func (c *Component) Err() <-chan error { return c.errc }

// Agent is the running agent (nil before Start).
func (c *Component) Agent() *Agent { return c.a }
