package plasmavmc

import (
	"context"
	"fmt"
	"net/url"
	"time"

	"github.com/photoncloud/photon/internal/apierr"
)

// Server-side metering, for wallets that opt into it (CreditService's
// wallet setting "metering", off by default; the seed's client-driven
// reserve → create → start → commit flow charges nothing more): a VM is
// refused when the wallet cannot pay its first period, and every running
// VM is charged each period. A charge carries the idempotency key
// "meter-<vm>-<period>", so that every replica, restarted or not, may
// charge and the wallet still pays once per VM and period.

// Prices of a period of one VM, in the wallet's currency.
type Prices struct {
	VCPUHour int64 // per vCPU and hour
	GiBHour  int64 // per GiB of memory and hour
	// Period is what one charge covers (default an hour).
	Period time.Duration
}

// charge is what one period of vm costs: rounded up, never 0 for a VM
// that costs anything.
func (p Prices) charge(vm VM) int64 {
	sec := int64(p.Period / time.Second)
	milli := int64(vm.VCPUs)*p.VCPUHour*1024 + int64(vm.MemoryMiB)*p.GiBHour // per hour, in 1/1024 units
	return (milli*sec + 3600*1024 - 1) / (3600 * 1024)
}

type meterWallet struct {
	Available int64  `json:"available"`
	Metering  bool   `json:"metering"`
	Status    string `json:"status"`
}

// wallet reads the project's wallet; nil when it has none.
func (s *Service) wallet(ctx context.Context, project string) (*meterWallet, error) {
	var w meterWallet
	err := s.credits.call(ctx, "GET", "/api/v1/wallets/"+url.PathEscape(project), nil, &w)
	if apierr.CodeOf(err) == apierr.CodeNotFound {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &w, nil
}

// checkCredit refuses a VM whose metered wallet cannot pay its first
// period (402 INSUFFICIENT_CREDIT).
func (s *Service) checkCredit(ctx context.Context, vm VM) error {
	if s.credits == nil || s.cfg.Prices.Period == 0 {
		return nil
	}
	w, err := s.wallet(ctx, vm.ProjectID)
	if err != nil || w == nil || !w.Metering {
		return err
	}
	if need := s.cfg.Prices.charge(vm); w.Available < need {
		return &apierr.Error{Code: apierr.CodeInsufficientCredit,
			Message: fmt.Sprintf("the wallet of %s has %d available; the VM's first period costs %d", vm.ProjectID, w.Available, need),
			Details: map[string]any{"available": w.Available, "requested": need}}
	}
	return nil
}

// Meter charges every running VM of a metered wallet for the current
// period, once (the idempotency key makes a repeat a no-op). ctx carries
// the credential to charge with.
func (s *Service) Meter(ctx context.Context, now time.Time) error {
	if s.credits == nil || s.cfg.Prices.Period == 0 {
		return nil
	}
	period := now.Unix() / int64(s.cfg.Prices.Period/time.Second)
	wallets := map[string]*meterWallet{}
	token := ""
	var first error
	for {
		page, err := s.st.vms.List(ctx, "", 1000, token)
		if err != nil {
			return err
		}
		for _, it := range page.Items {
			vm := it.Value
			if vm.State != StateRunning {
				continue
			}
			w, seen := wallets[vm.ProjectID]
			if !seen {
				if w, err = s.wallet(ctx, vm.ProjectID); err != nil {
					first = firstOf(first, err)
					continue
				}
				wallets[vm.ProjectID] = w
			}
			if w == nil || !w.Metering || s.cfg.Prices.charge(vm) == 0 {
				continue
			}
			body := map[string]any{"amount": s.cfg.Prices.charge(vm), "resource_type": "vm", "resource_id": vm.ID,
				"description": fmt.Sprintf("vm %s: %d vCPU, %d MiB, period %d", vm.ID, vm.VCPUs, vm.MemoryMiB, period)}
			key := fmt.Sprintf("meter-%s-%d", vm.ID, period)
			if err := s.credits.callKeyed(ctx, "POST", "/api/v1/wallets/"+url.PathEscape(vm.ProjectID)+"/charge", key, body, nil); err != nil {
				first = firstOf(first, err)
			}
		}
		if token = page.NextPageToken; token == "" {
			return first
		}
	}
}

func firstOf(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// meter runs Meter every tick until ctx ends.
func (s *Service) meter(ctx context.Context, credential func() string) {
	tick := s.cfg.Prices.Period / 4
	if tick > 10*time.Second {
		tick = 10 * time.Second
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			c := ""
			if credential != nil {
				c = credential()
			}
			mctx, cancel := context.WithTimeout(WithCredential(ctx, c), tick)
			if err := s.Meter(mctx, now); err != nil {
				s.log.Warn("metering", "err", err)
			}
			cancel()
		}
	}
}
