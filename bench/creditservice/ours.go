package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/photoncloud/photon/internal/auth"
	"github.com/photoncloud/photon/internal/platform"
	"github.com/photoncloud/photon/services/chainfire"
	"github.com/photoncloud/photon/services/creditservice"
	"github.com/photoncloud/photon/services/iam"
)

// startStack starts the `photon up` stack (ChainFire, IAM, CreditService)
// in this process on the given free loopback ports, data in dir.
func startStack(ctx context.Context, dir string, ports []string, stderr io.Writer) (*platform.Stack, error) {
	cfg := platform.Config{
		DataDir: dir,
		ChainFire: chainfire.Config{
			NodeID: 1, HTTPAddr: ports[0], GRPCAddr: ports[1], PeerAddr: ports[2],
		},
		IAM:           iam.Config{HTTPAddr: ports[3]},
		CreditService: creditservice.Config{HTTPAddr: ports[4]},
	}
	p, err := platform.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("stack: %w", err)
	}
	fmt.Fprintf(stderr, "starting ChainFire, IAM and CreditService in %s\n", dir)
	sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := p.Start(sctx); err != nil {
		return nil, fmt.Errorf("start stack: %w", err)
	}
	if mode := p.ChainFire.Auth().Mode(); mode != auth.ModeLoopback {
		_ = p.Stop(context.Background())
		return nil, fmt.Errorf("the stack runs in %s mode; the tokenless clients need loopback trust", mode)
	}
	fmt.Fprintf(stderr, "CreditService REST %s, auth mode %s\n", p.CreditService.HTTPAddr(), p.ChainFire.Auth().Mode())
	return p, nil
}

// rest is a tokenless (loopback trust) client of CreditService's REST API.
type rest struct {
	hc   *http.Client
	base string
}

// call sends a JSON body (nil for none) and decodes the envelope's data
// into out (nil to discard); any status but want is an error.
func (c rest) call(ctx context.Context, method, path string, body []byte, want int, out any) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: status %d: %s", method, path, resp.StatusCode, bytes.TrimSpace(b))
	}
	if out == nil {
		return nil
	}
	env := struct {
		Data any `json:"data"`
	}{out}
	return json.Unmarshal(b, &env)
}

func (c rest) createWallet(ctx context.Context, project string, initial int64) error {
	body, _ := json.Marshal(creditservice.CreateWalletRequest{ProjectID: project, OrgID: "bench", InitialBalance: initial})
	return c.call(ctx, http.MethodPost, "/api/v1/wallets", body, http.StatusCreated, nil)
}

// pair is one reserve+commit through the REST API, the commit charging
// actual of the amount reserved.
func (c rest) pair(ctx context.Context, project string, amount, actual int64) error {
	body := fmt.Appendf(nil, `{"project_id":%q,"amount":%d}`, project, amount)
	var r struct {
		ID string `json:"id"`
	}
	if err := c.call(ctx, http.MethodPost, "/api/v1/reservations", body, http.StatusCreated, &r); err != nil {
		return err
	}
	if r.ID == "" {
		return fmt.Errorf("reserve: no id in the answer")
	}
	return c.call(ctx, http.MethodPost, "/api/v1/reservations/"+url.PathEscape(r.ID)+"/commit",
		fmt.Appendf(nil, `{"actual_amount":%d}`, actual), http.StatusOK, nil)
}

// checkOurs reads every wallet back through the REST API and checks its
// invariants against its transactions and active reservations.
func checkOurs(ctx context.Context, c rest, projects []string, commits map[string]int64) (check, error) {
	var ck check
	for _, p := range projects {
		var w creditservice.Wallet
		if err := c.call(ctx, http.MethodGet, "/api/v1/wallets/"+p, nil, http.StatusOK, &w); err != nil {
			return check{}, err
		}
		ws := walletState{project: p, balance: w.Balance, reserved: w.Reserved, available: w.Available}
		for tok := ""; ; {
			var page creditservice.TransactionList
			if err := c.call(ctx, http.MethodGet, "/api/v1/wallets/"+p+"/transactions?limit=1000"+pageParam(tok), nil, http.StatusOK, &page); err != nil {
				return check{}, err
			}
			for _, t := range page.Transactions {
				ws.txSum += t.Amount
				if t.Type == creditservice.TxnCharge {
					ws.charges++
				}
			}
			if tok = page.NextPageToken; tok == "" {
				break
			}
		}
		for tok := ""; ; {
			var page creditservice.ReservationList
			if err := c.call(ctx, http.MethodGet, "/api/v1/reservations?status=active&limit=1000&project_id="+p+pageParam(tok), nil, http.StatusOK, &page); err != nil {
				return check{}, err
			}
			for _, r := range page.Reservations {
				ws.activeSum += r.Amount
			}
			if tok = page.NextPageToken; tok == "" {
				break
			}
		}
		ck.add(ws, commits)
	}
	return ck, nil
}

func pageParam(tok string) string {
	if tok == "" {
		return ""
	}
	return "&page_token=" + url.QueryEscape(tok)
}
