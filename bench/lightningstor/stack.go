package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/minio/minio-go/v7/pkg/signer"

	"github.com/photoncloud/photon/bench/internal/pairbench"
	"github.com/photoncloud/photon/internal/platform"
	"github.com/photoncloud/photon/services/chainfire"
	"github.com/photoncloud/photon/services/creditservice"
	"github.com/photoncloud/photon/services/iam"
	"github.com/photoncloud/photon/services/lightningstor"
	"github.com/photoncloud/photon/services/plasmavmc"
	"github.com/photoncloud/photon/services/prismnet"
)

type stack struct {
	p      *platform.Stack
	client *s3Client
}

func (s *stack) stop(ctx context.Context) error { return s.p.Stop(ctx) }

// startStack runs `photon up`'s stack (no data plane, no hypervisor) in this
// process and reads its bootstrap S3 key.
func startStack(ctx context.Context, dir string, ports []string, stderr io.Writer) (*stack, error) {
	cfg := platform.Config{
		DataDir:       dir,
		ChainFire:     chainfire.Config{NodeID: 1, HTTPAddr: ports[0], GRPCAddr: ports[1], PeerAddr: ports[2]},
		IAM:           iam.Config{HTTPAddr: ports[3]},
		CreditService: creditservice.Config{HTTPAddr: ports[4]},
		PrismNET:      prismnet.Config{HTTPAddr: ports[5]},
		PlasmaVMC:     plasmavmc.Config{HTTPAddr: ports[6]},
		LightningSTOR: lightningstor.Config{HTTPAddr: ports[7]},
		Dataplane:     "off",
		Hypervisor:    "off",
	}
	p, err := platform.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("stack: %w", err)
	}
	fmt.Fprintf(stderr, "starting the stack in %s\n", dir)
	sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := p.Start(sctx); err != nil {
		return nil, fmt.Errorf("start stack: %w", err)
	}
	id, secret, err := platform.ReadS3Credentials(filepath.Join(dir, platform.S3CredentialsFile))
	if err != nil {
		_ = p.Stop(context.Background())
		return nil, err
	}
	return &stack{p: p, client: &s3Client{base: "http://" + p.LightningSTOR.HTTPAddr(), id: id, secret: secret,
		hc: pairbench.HTTPClient(64)}}, nil
}

// s3Client sends path-style SigV4 requests with an unsigned payload, through
// the same kind of keep-alive client the nginx side uses.
type s3Client struct {
	base, id, secret string
	hc               *http.Client
}

// StatusError is an S3 answer other than the one expected.
type StatusError struct {
	Op     string
	Status int
	Body   string
}

func (e *StatusError) Error() string { return fmt.Sprintf("%s: HTTP %d: %s", e.Op, e.Status, e.Body) }

func (c *s3Client) do(ctx context.Context, method, path string, body []byte, sink io.Writer) (int64, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return 0, err
	}
	req.ContentLength = int64(len(body))
	req.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
	req = signer.SignV4(*req, c.id, c.secret, "", "us-east-1")
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return 0, &StatusError{Op: method + " " + path, Status: resp.StatusCode, Body: strings.TrimSpace(string(b))}
	}
	if sink == nil {
		sink = io.Discard
	}
	return io.Copy(sink, resp.Body)
}

func (c *s3Client) makeBucket(ctx context.Context, name string) error {
	_, err := c.do(ctx, http.MethodPut, "/"+name, nil, nil)
	return err
}

func (c *s3Client) put(ctx context.Context, key string, body []byte) error {
	_, err := c.do(ctx, http.MethodPut, "/"+bucket+"/"+key, body, nil)
	return err
}

func (c *s3Client) get(ctx context.Context, key string, want int64) error {
	n, err := c.do(ctx, http.MethodGet, "/"+bucket+"/"+key, nil, nil)
	if err == nil && n != want {
		return fmt.Errorf("GET %s: %d bytes, want %d", key, n, want)
	}
	return err
}

func (c *s3Client) del(ctx context.Context, key string) error {
	_, err := c.do(ctx, http.MethodDelete, "/"+bucket+"/"+key, nil, nil)
	return err
}
