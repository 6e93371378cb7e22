package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/photoncloud/photon/bench/internal/pairbench"
	"github.com/photoncloud/photon/internal/auth"
	"github.com/photoncloud/photon/internal/platform"
	"github.com/photoncloud/photon/services/chainfire"
	"github.com/photoncloud/photon/services/iam"
)

// benchKey is the key every GET reads.
const benchKey = "bench-iam"

// stack is the in-process `photon up` under test.
type stack struct {
	*platform.Stack
	dir        string
	adminToken string
}

// startStack starts ChainFire and IAM on free loopback ports with their data
// in dir, as testutil.StartStack does, and reads the admin token IAM wrote.
func startStack(ctx context.Context, dir string, stderr io.Writer) (*stack, error) {
	ports, err := pairbench.FreePorts(4)
	if err != nil {
		return nil, err
	}
	cfg := platform.Config{
		DataDir: dir,
		ChainFire: chainfire.Config{
			NodeID: 1, HTTPAddr: ports[0], GRPCAddr: ports[1], PeerAddr: ports[2],
		},
		IAM: iam.Config{HTTPAddr: ports[3]},
	}
	p, err := platform.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("stack: %w", err)
	}
	fmt.Fprintf(stderr, "starting ChainFire and IAM in %s\n", dir)
	sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := p.Start(sctx); err != nil {
		return nil, fmt.Errorf("start stack: %w", err)
	}
	s := &stack{Stack: p, dir: dir}
	b, err := os.ReadFile(filepath.Join(dir, platform.AdminTokenFile))
	if err != nil {
		_ = s.stop(context.Background())
		return nil, fmt.Errorf("admin token: %w", err)
	}
	s.adminToken = strings.TrimSpace(string(b))
	if mode := p.ChainFire.Auth().Mode(); mode != auth.ModeLoopback {
		_ = s.stop(context.Background())
		return nil, fmt.Errorf("the stack runs in %s mode; the tokenless baseline needs loopback trust", mode)
	}
	fmt.Fprintf(stderr, "ChainFire REST %s, IAM %s, auth mode %s\n", p.ChainFire.HTTPAddr(), p.IAM.HTTPAddr(), p.ChainFire.Auth().Mode())
	return s, nil
}

func (s *stack) stop(ctx context.Context) error { return s.Stack.Stop(ctx) }

// httpCase is one HTTP target: the same GET, with or without a token.
type httpCase struct {
	id, name string
	authz    string // the Authorization header; "" for the loopback-trust baseline
	hc       *http.Client
	url      string
	minBody  int // a 200 body shorter than this cannot hold the value
}

// newHTTPCases writes the key (tokenless, as loopback trust allows), then
// checks what each target will see: the value, read back in full, with and
// without the token, and a 401 for a forged token, so the token target is
// known to go through verification.
func newHTTPCases(ctx context.Context, st *stack, opt options) ([]httpCase, error) {
	hc := pairbench.HTTPClient(opt.conc)
	base := "http://" + st.ChainFire.HTTPAddr()
	value := makeValue(opt.valueSize)
	body, _ := json.Marshal(map[string]string{"value": value})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/v1/kv/"+benchKey+"/put", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if _, status, err := do(hc, req, io.Discard); err != nil || status != http.StatusOK {
		return nil, fmt.Errorf("put %s: status %d, %v", benchKey, status, err)
	}
	cases := []httpCase{
		{id: "t", name: "GET with bearer token", authz: "Bearer " + st.adminToken},
		{id: "l", name: "GET, loopback trust"},
	}
	for i := range cases {
		cases[i].hc, cases[i].url, cases[i].minBody = hc, base+"/api/v1/kv/"+benchKey, len(value)
		if err := cases[i].check(ctx, value); err != nil {
			return nil, fmt.Errorf("%s: %w", cases[i].name, err)
		}
	}
	forged := httpCase{hc: hc, url: cases[0].url, authz: "Bearer " + forge(st.adminToken)}
	if _, status, err := forged.get(ctx, io.Discard); err != nil || status != http.StatusUnauthorized {
		return nil, fmt.Errorf("GET with a forged token: status %d (%v), want 401: the token target would not measure verification", status, err)
	}
	return cases, nil
}

// forge flips one bit of the token's signature.
func forge(tok string) string {
	b := []byte(tok)
	i := len(b) - 2 // not the last character, whose low bits base64 leaves unused
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}

func (c httpCase) get(ctx context.Context, w io.Writer) (int64, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url, nil)
	if err != nil {
		return 0, 0, err
	}
	if c.authz != "" {
		req.Header.Set("Authorization", c.authz)
	}
	return do(c.hc, req, w)
}

// op is one measured request: status 200 and a body long enough for the
// value (decoding is left to check, so the clients spend no more CPU than
// they must on the cores they share with the server).
func (c httpCase) op(ctx context.Context) error {
	n, status, err := c.get(ctx, io.Discard)
	switch {
	case err != nil:
		return err
	case status != http.StatusOK:
		return fmt.Errorf("GET: status %d", status)
	case n < int64(c.minBody):
		return fmt.Errorf("GET: %d-byte body cannot hold a %d-byte value", n, c.minBody)
	}
	return nil
}

// check reads the key in full and compares its value.
func (c httpCase) check(ctx context.Context, value string) error {
	var buf bytes.Buffer
	_, status, err := c.get(ctx, &buf)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("GET: status %d: %s", status, buf.String())
	}
	var env struct {
		Data struct{ Key, Value string } `json:"data"`
	}
	if err := json.Unmarshal(buf.Bytes(), &env); err != nil {
		return err
	}
	if env.Data.Key != benchKey || env.Data.Value != value {
		return fmt.Errorf("got key %q with a %d-byte value, want %q with the value written", env.Data.Key, len(env.Data.Value), benchKey)
	}
	return nil
}

// do sends req and reads the whole body into w, so the connection is reused.
func do(hc *http.Client, req *http.Request, w io.Writer) (int64, int, error) {
	resp, err := hc.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(w, resp.Body)
	return n, resp.StatusCode, err
}

// runHTTP warms each target up, then runs opt.cycles cycles of one slice per
// target.
func runHTTP(ctx context.Context, opt options, cases []httpCase, stderr io.Writer) ([]pairbench.Slice, error) {
	sched := pairbench.Schedule{
		Targets: len(cases), Cycles: opt.cycles,
		Warmup: opt.warmup, Settle: opt.httpSettle, Slice: opt.httpSlice,
		Warned: func(i int, w pairbench.Slice) {
			fmt.Fprintf(stderr, "warm-up %s: %d errors, first: %v\n", cases[i].name, w.Errs, w.FirstErr)
		},
		Progress: func(cycle int, rates string) {
			fmt.Fprintf(stderr, "http c=%d cycle %2d/%d  req/s%s\n", opt.conc, cycle+1, opt.cycles, rates)
		},
	}
	return sched.Run(ctx, func(i int, settle, dur time.Duration) pairbench.Slice {
		loop := pairbench.ClosedLoop{Target: cases[i].id, Conc: opt.conc, Op: cases[i].op}
		return loop.Run(ctx, settle, dur)
	})
}

// makeValue returns n printable bytes (no JSON escaping needed).
func makeValue(n int) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[i*7%len(alphabet)]
	}
	return string(b)
}
