package hypervisor

import (
	"context"
	"fmt"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/photoncloud/photon/services/plasmavmc"
)

// Component runs an agent as a lifecycle component of `photon up`, over
// the process's ChainFire client.
type Component struct {
	cfg       Config
	client    func() *clientv3.Client
	endpoints []string
	own       *clientv3.Client

	mu   sync.Mutex
	a    *Agent
	errc chan error
}

// NewComponent runs an agent over the client client returns at Start.
func NewComponent(cfg Config, client func() *clientv3.Client) *Component {
	return &Component{cfg: cfg, client: client, errc: make(chan error, 1)}
}

// NewStandalone runs an agent with its own client of the ChainFire
// members at endpoints (`photon serve plasmavmc-agent`).
func NewStandalone(cfg Config, endpoints []string) (*Component, error) {
	if len(endpoints) == 0 {
		return nil, fmt.Errorf("no ChainFire endpoints")
	}
	return &Component{cfg: cfg, endpoints: endpoints, errc: make(chan error, 1)}, nil
}

// Name names the component.
func (c *Component) Name() string { return "plasmavmc-agent" }

// Start registers the node and starts running its VMs.
func (c *Component) Start(ctx context.Context) error {
	var cli *clientv3.Client
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
		return fmt.Errorf("plasmavmc agent: %w", err)
	}
	c.mu.Lock()
	c.a = a
	c.mu.Unlock()
	return nil
}

// Stop stops the agent; the VMs keep running.
func (c *Component) Stop(ctx context.Context) error {
	c.mu.Lock()
	a := c.a
	c.mu.Unlock()
	if a == nil {
		return nil
	}
	err := a.Stop(ctx)
	if c.own != nil {
		c.own.Close()
	}
	return err
}

// Err never reports: the agent survives store outages by retrying.
func (c *Component) Err() <-chan error { return c.errc }

// Agent is the running agent (nil before Start).
func (c *Component) Agent() *Agent {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.a
}

// Console reads a VM's console through the running agent.
func (c *Component) Console(ctx context.Context, vm plasmavmc.VM, n int) ([]byte, error) {
	a := c.Agent()
	if a == nil {
		return nil, fmt.Errorf("no hypervisor agent runs in this process")
	}
	return a.Console(ctx, vm, n)
}
