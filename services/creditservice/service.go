package creditservice

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/photoncloud/photon/internal/apierr"
	"github.com/photoncloud/photon/internal/ids"
	"github.com/photoncloud/photon/internal/keylock"
	"github.com/photoncloud/photon/internal/state"
)

// Service is CreditService's domain logic: wallets, two-phase reservations,
// transactions and quotas, all in ChainFire. Every method authorizes the
// caller in ctx (internal/auth) before it reads or changes anything.
type Service struct {
	cfg Config
	st  *store
	now func() time.Time
	log *slog.Logger
	// locks queues one replica's changes to a project, so that they do not
	// lose compare-and-swap races to each other.
	locks keylock.Set
	// lastForget is when the sweeper last dropped old idempotency keys.
	lastForget atomic.Int64
}

// NewService returns CreditService over cli.
func NewService(cfg Config, cli *clientv3.Client) *Service {
	cfg.Defaults()
	return &Service{cfg: cfg, st: newStore(cli), now: time.Now, log: slog.Default().With("service", "creditservice")}
}

// MaxAmount bounds every amount and balance (10^15 minor units): far above
// any real wallet, far below where int64 arithmetic could wrap.
const MaxAmount int64 = 1_000_000_000_000_000

// change is what a money-moving operation writes besides the wallet.
type change struct {
	wallet Wallet
	ops    []state.Op
	status int // the HTTP status its answer has, for idempotent replays
	result any
	// expiryOnly marks the sweeper's change: written only if some
	// reservation was due.
	expiryOnly bool
}

// maxAttempts bounds the compare-and-swap retries of one change (another
// replica changing the same wallet in between).
const maxAttempts = 50

// apply runs one money-moving change to project's ledger: read the wallet
// and its active reservations, expire those past their TTL, let fn decide,
// then write everything in one transaction that holds only if the wallet
// is unchanged — retrying from the read if another writer won. With an
// Idempotency-Key, a change already made answers as it did then.
func (s *Service) apply(ctx context.Context, project string, idem *IdempotencyKey, fn func(l *ledger, now time.Time) (change, error)) (int, any, error) {
	unlock, err := s.locks.Lock(ctx, project, "wallet "+project)
	if err != nil {
		return 0, nil, err
	}
	defer unlock()
	for attempt := 0; attempt < maxAttempts; attempt++ {
		if idem != nil {
			if status, data, found, err := s.replay(ctx, project, idem); found || err != nil {
				return status, data, err
			}
		}
		// The first read is local; after a lost race, read fresh.
		l, err := s.st.readLedger(ctx, project, attempt > 0)
		if err != nil {
			return 0, nil, err
		}
		now := s.now().UTC()
		ops, err := s.expire(ctx, &l, now)
		if err != nil {
			return 0, nil, err
		}
		ch, err := fn(&l, now)
		if err != nil {
			return 0, nil, err
		}
		if ch.expiryOnly && len(ops) == 0 {
			return ch.status, ch.result, nil
		}
		settle(&ch.wallet, now)
		walletOp, err := s.st.wallets.UpdateOp(project, walletRecord{Wallet: ch.wallet, Active: l.active}, l.wallet.ModRevision)
		if err != nil {
			return 0, nil, err
		}
		ops = append([]state.Op{walletOp}, append(ops, ch.ops...)...)
		if idem != nil {
			op, err := s.remember(project, idem, ch.status, ch.result, now)
			if err != nil {
				return 0, nil, err
			}
			ops = append(ops, op)
		}
		_, err = state.Commit(ctx, s.st.cli, ops...)
		switch apierr.CodeOf(err) {
		case "":
			return ch.status, ch.result, nil
		case apierr.CodeConflict, apierr.CodeAlreadyExists:
			// Another replica changed the wallet, or a concurrent request
			// with the same Idempotency-Key won: read again.
			continue
		default:
			return 0, nil, err
		}
	}
	return 0, nil, apierr.New(apierr.CodeUnavailable, "wallet %s is changing too fast; retry", project)
}

// settle recomputes what follows from the balance: available, and the
// status — a wallet whose credit is used up is suspended (no new
// reservations), and money that brings it back reactivates it.
func settle(w *Wallet, now time.Time) {
	w.Available = w.Balance - w.Reserved
	switch {
	case w.Status == WalletActive && w.Balance <= -w.CreditLimit:
		w.Status, w.Suspension = WalletSuspended, SuspendedNoCredit
	case w.Status == WalletSuspended && w.Suspension == SuspendedNoCredit && w.Balance > -w.CreditLimit:
		w.Status, w.Suspension = WalletActive, ""
	}
	w.UpdatedAt = now
}

// expire ends the ledger's active reservations that are past their TTL,
// inside the change being made: a reservation is never active after it
// expires, whether or not the sweeper has come by yet.
func (s *Service) expire(ctx context.Context, l *ledger, now time.Time) ([]state.Op, error) {
	var ops []state.Op
	project := l.wallet.ID
	for id, e := range l.active {
		if e.ExpiresAt.After(now) {
			continue
		}
		it, err := s.st.reservations.Get(ctx, project+"/"+id)
		if err != nil {
			return nil, err
		}
		r := it.Value
		r.Status, r.EndedAt = ReservationExpired, &now
		op, err := s.st.reservations.PutOp(project+"/"+id, r, 0)
		if err != nil {
			return nil, err
		}
		ops = append(ops, op)
		l.wallet.Value.Reserved -= e.Amount
		delete(l.active, id)
	}
	return ops, nil
}

// record returns the op that stores a transaction of amount on w (whose
// balance and sequence it advances).
func (s *Service) record(w *Wallet, t Transaction, now time.Time) (Transaction, state.Op, error) {
	w.Balance += t.Amount
	w.TransactionCount++
	t.ID = ids.New("txn")
	t.ProjectID = w.ProjectID
	t.BalanceAfter = w.Balance
	t.Sequence = w.TransactionCount
	t.Timestamp = now
	op, err := s.st.transactions.CreateOp(txnKey(w.ProjectID, t.Sequence), t)
	return t, op, err
}

// view is how a wallet is shown: with reservations past their TTL counted
// as released, even before anything has written that.
func view(l ledger, now time.Time) Wallet {
	w := l.wallet.Value
	for _, e := range l.active {
		if !e.ExpiresAt.After(now) {
			w.Reserved -= e.Amount
		}
	}
	w.Available = w.Balance - w.Reserved
	return w
}

// insufficient is the 402 of a change the available credit cannot cover.
func insufficient(w Wallet, amount int64) error {
	return &apierr.Error{Code: apierr.CodeInsufficientCredit,
		Message: "not enough available credit",
		Details: map[string]any{"project_id": w.ProjectID, "available": w.Available, "requested": amount,
			"credit_limit": w.CreditLimit, "status": w.Status}}
}

// covers reports whether w can take amount more without going below its
// credit limit.
func covers(w Wallet, amount int64) bool {
	return w.Balance-w.Reserved-amount >= -w.CreditLimit
}

// validAmount checks an amount given in a request: positive, at most
// MaxAmount.
func validAmount(field string, v int64) error {
	if v <= 0 || v > MaxAmount {
		return &apierr.Error{Code: apierr.CodeValidation, Message: field + " must be a positive integer of at most 10^15 minor units",
			Details: map[string]any{"field": field, "constraint": string(apierr.Range), "min": 1, "max": MaxAmount}}
	}
	return nil
}

// overflows reports whether adding amount to balance would leave the
// range amounts are kept in.
func overflows(balance, amount int64) bool {
	return balance+amount > MaxAmount
}
