package creditservice

import (
	"context"
	"errors"
	"time"

	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/photoncloud/photon/internal/apierr"
)

// runSweeper campaigns for the sweeper's seat (an etcd lease election, so
// one replica sweeps at a time and another takes over within the lease TTL
// if it dies) and, while elected, sweeps every SweepInterval until ctx ends.
func (s *Service) runSweeper(ctx context.Context) {
	for ctx.Err() == nil {
		if err := s.leadSweeps(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("creditservice: sweeper", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
}

func (s *Service) leadSweeps(ctx context.Context) error {
	session, err := concurrency.NewSession(s.st.cli, concurrency.WithTTL(5), concurrency.WithContext(ctx))
	if err != nil {
		return err
	}
	defer session.Close()
	election := concurrency.NewElection(session, sweeperElection)
	if err := election.Campaign(ctx, s.cfg.Node); err != nil {
		return err
	}
	s.log.Debug("creditservice: elected sweeper", "node", s.cfg.Node)
	t := time.NewTicker(s.cfg.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			rctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_ = election.Resign(rctx)
			cancel()
			return nil
		case <-session.Done():
			return errors.New("lost the sweeper's lease")
		case <-t.C:
			if err := s.Sweep(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("creditservice: sweep", "err", err)
			}
		}
	}
}

// Sweep expires every active reservation past its TTL (their amounts return
// to available) and forgets idempotency keys older than IdempotencyTTL.
func (s *Service) Sweep(ctx context.Context) error {
	now := s.now().UTC()
	due := map[string]bool{}
	token := ""
	for {
		page, err := s.st.wallets.List(ctx, "", 500, token)
		if err != nil {
			return err
		}
		for _, it := range page.Items {
			for _, e := range it.Value.Active {
				if !e.ExpiresAt.After(now) {
					due[it.ID] = true
					break
				}
			}
		}
		if token = page.NextPageToken; token == "" {
			break
		}
	}
	var errs []error
	for project := range due {
		// A change of nothing else: apply expires what is due on the way
		// (and writes nothing if a commit or release got there first).
		_, _, err := s.apply(ctx, project, nil, func(l *ledger, now time.Time) (change, error) {
			return change{wallet: l.wallet.Value, expiryOnly: true}, nil
		})
		if err != nil && apierr.CodeOf(err) != apierr.CodeNotFound {
			errs = append(errs, err)
		}
	}
	// Old idempotency keys are few and harmless: look once a minute.
	if last := s.lastForget.Load(); now.UnixNano()-last >= int64(time.Minute) {
		s.lastForget.Store(now.UnixNano())
		errs = append(errs, s.forgetIdempotencyKeys(ctx, now))
	}
	return errors.Join(errs...)
}

// forgetIdempotencyKeys deletes remembered answers older than the TTL.
func (s *Service) forgetIdempotencyKeys(ctx context.Context, now time.Time) error {
	token := ""
	for {
		page, err := s.st.idempotency.List(ctx, "", 500, token)
		if err != nil {
			return err
		}
		for _, it := range page.Items {
			if now.Sub(it.Value.CreatedAt) > s.cfg.IdempotencyTTL {
				if err := s.st.idempotency.Delete(ctx, it.ID, it.ModRevision); err != nil && apierr.CodeOf(err) != apierr.CodeNotFound && apierr.CodeOf(err) != apierr.CodeConflict {
					return err
				}
			}
		}
		if token = page.NextPageToken; token == "" {
			return nil
		}
	}
}
