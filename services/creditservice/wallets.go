package creditservice

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/photoncloud/photon/internal/apierr"
	"github.com/photoncloud/photon/internal/auth"
	"github.com/photoncloud/photon/internal/auth/policy"
	"github.com/photoncloud/photon/internal/ids"
	"github.com/photoncloud/photon/internal/state"
)

// Permissions CreditService checks. A project member may reserve, commit,
// release and charge for its project and read its wallet; creating wallets,
// topping up and changing a wallet or quota are admin's (the built-in member
// role denies them), so a project can never credit itself.
const (
	permWalletsCreate       = "creditservice.wallets.create"
	permWalletsGet          = "creditservice.wallets.get"
	permWalletsUpdate       = "creditservice.wallets.update"
	permWalletsTopup        = "creditservice.wallets.topup"
	permWalletsCharge       = "creditservice.wallets.charge"
	permTransactionsList    = "creditservice.transactions.list"
	permReservationsCreate  = "creditservice.reservations.create"
	permReservationsGet     = "creditservice.reservations.get"
	permReservationsList    = "creditservice.reservations.list"
	permReservationsCommit  = "creditservice.reservations.commit"
	permReservationsRelease = "creditservice.reservations.release"
	permQuotasGet           = "creditservice.quotas.get"
	permQuotasUpdate        = "creditservice.quotas.update"
	permQuotasCheck         = "creditservice.quotas.check"
)

const maxTextLen = 1024

// validID checks a project, org or resource id by the rule every service
// shares (ids.Check); an optional one may be empty.
func validID(field, id string, required bool) error {
	if id == "" && !required {
		return nil
	}
	return ids.Check(field, id)
}

func validText(field, s string) error {
	if len(s) > maxTextLen {
		return apierr.Validation(field, apierr.MaxLength, "%s must be at most %d characters", field, maxTextLen)
	}
	return nil
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

func target(w Wallet) policy.Target { return policy.Target{OrgID: w.OrgID, ProjectID: w.ProjectID} }

// CreateWallet opens a project's wallet, with an initial deposit when
// initial_balance is given.
func (s *Service) CreateWallet(ctx context.Context, req CreateWalletRequest, idem *IdempotencyKey) (int, any, error) {
	if req.Currency == "" {
		req.Currency = s.cfg.Currency
	}
	req.Currency = strings.ToUpper(req.Currency)
	if err := firstErr(validID("project_id", req.ProjectID, true), validID("org_id", req.OrgID, true)); err != nil {
		return 0, nil, err
	}
	if req.InitialBalance < 0 || req.InitialBalance > MaxAmount {
		return 0, nil, &apierr.Error{Code: apierr.CodeValidation, Message: "initial_balance must be from 0 to 10^15",
			Details: map[string]any{"field": "initial_balance", "constraint": string(apierr.Range), "min": 0, "max": MaxAmount}}
	}
	if req.CreditLimit < 0 || req.CreditLimit > MaxAmount {
		return 0, nil, &apierr.Error{Code: apierr.CodeValidation, Message: "credit_limit must be from 0 to 10^15",
			Details: map[string]any{"field": "credit_limit", "constraint": string(apierr.Range), "min": 0, "max": MaxAmount}}
	}
	if len(req.Currency) != 3 || strings.IndexFunc(req.Currency, func(r rune) bool { return r < 'A' || r > 'Z' }) >= 0 {
		return 0, nil, apierr.Validation("currency", apierr.Format, "currency %q must be a three-letter ISO 4217 code", req.Currency)
	}
	if err := auth.Require(ctx, permWalletsCreate, policy.Target{OrgID: req.OrgID, ProjectID: req.ProjectID}); err != nil {
		return 0, nil, err
	}
	unlock, err := s.locks.Lock(ctx, req.ProjectID, "wallet "+req.ProjectID)
	if err != nil {
		return 0, nil, err
	}
	defer unlock()
	for attempt := 0; attempt < maxAttempts; attempt++ {
		if idem != nil {
			if status, data, found, err := s.replay(ctx, req.ProjectID, idem); found || err != nil {
				return status, data, err
			}
		}
		now := s.now().UTC()
		w := Wallet{ProjectID: req.ProjectID, OrgID: req.OrgID, Currency: req.Currency, CreditLimit: req.CreditLimit,
			Status: WalletActive, CreatedAt: now}
		var ops []state.Op
		if req.InitialBalance > 0 {
			_, op, err := s.record(&w, Transaction{Amount: req.InitialBalance, Type: TxnDeposit, Description: "initial balance"}, now)
			if err != nil {
				return 0, nil, err
			}
			ops = append(ops, op)
		}
		settle(&w, now)
		create, err := s.st.wallets.CreateOp(w.ProjectID, walletRecord{Wallet: w})
		if err != nil {
			return 0, nil, err
		}
		ops = append([]state.Op{create}, ops...)
		if idem != nil {
			op, err := s.remember(w.ProjectID, idem, http.StatusCreated, w, now)
			if err != nil {
				return 0, nil, err
			}
			ops = append(ops, op)
		}
		_, err = state.Commit(ctx, s.st.cli, ops...)
		if err == nil {
			return http.StatusCreated, w, nil
		}
		// The wallet's own create fails first, so ALREADY_EXISTS here on
		// a later step is the idempotency record of a concurrent twin.
		if e := apierr.As(err); e.Code == apierr.CodeAlreadyExists && e.Details["kind"] == "idempotency key" {
			continue
		}
		return 0, nil, err
	}
	return 0, nil, apierr.New(apierr.CodeUnavailable, "wallet %s is changing too fast; retry", req.ProjectID)
}

// GetWallet returns a project's wallet as of now: reservations past their
// TTL no longer count as reserved.
func (s *Service) GetWallet(ctx context.Context, project string) (Wallet, error) {
	if err := validID("project_id", project, true); err != nil {
		return Wallet{}, err
	}
	l, err := s.st.readLedger(ctx, project, true)
	if apierr.CodeOf(err) == apierr.CodeNotFound {
		// Not even a caller of another project may learn that: the same
		// answer either way (after the caller is known to be someone).
		if _, cerr := auth.Caller(ctx); cerr != nil {
			return Wallet{}, cerr
		}
	}
	if err != nil {
		return Wallet{}, err
	}
	if err := auth.RequireOn(ctx, permWalletsGet, target(l.wallet.Value), "wallet", project); err != nil {
		return Wallet{}, err
	}
	return view(l, s.now().UTC()), nil
}

// authorizeOn checks perm on project's wallet before a change: NOT_FOUND
// for a wallet outside the caller's scope, exactly as for a missing one.
func (s *Service) authorizeOn(ctx context.Context, perm, project string) error {
	if _, err := auth.Caller(ctx); err != nil {
		return err
	}
	// Only the wallet's org and project matter here, and they never change.
	it, err := s.st.wallets.GetLocal(ctx, project)
	if err != nil {
		return err
	}
	return auth.RequireOn(ctx, perm, target(it.Value.Wallet), "wallet", project)
}

// UpdateWallet changes a wallet's status or credit limit (admin only).
func (s *Service) UpdateWallet(ctx context.Context, project string, req UpdateWalletRequest) (Wallet, error) {
	if err := validID("project_id", project, true); err != nil {
		return Wallet{}, err
	}
	if req.Status != nil {
		switch *req.Status {
		case WalletActive, WalletSuspended, WalletClosed:
		default:
			return Wallet{}, apierr.Validation("status", apierr.Enum, "status %q must be active, suspended or closed", *req.Status)
		}
	}
	if req.CreditLimit != nil && (*req.CreditLimit < 0 || *req.CreditLimit > MaxAmount) {
		return Wallet{}, &apierr.Error{Code: apierr.CodeValidation, Message: "credit_limit must be from 0 to 10^15",
			Details: map[string]any{"field": "credit_limit", "constraint": string(apierr.Range), "min": 0, "max": MaxAmount}}
	}
	if err := s.authorizeOn(ctx, permWalletsUpdate, project); err != nil {
		return Wallet{}, err
	}
	_, out, err := s.apply(ctx, project, nil, func(l *ledger, now time.Time) (change, error) {
		w := l.wallet.Value
		if w.Status == WalletClosed {
			return change{}, apierr.New(apierr.CodeFailedPrecondition, "wallet %s is closed", project)
		}
		if req.CreditLimit != nil {
			// A lower limit may not leave what is already spent or
			// reserved beyond it.
			if w.Balance-w.Reserved < -*req.CreditLimit {
				return change{}, &apierr.Error{Code: apierr.CodeFailedPrecondition,
					Message: "the wallet already uses more credit than that limit; top up or release first",
					Details: map[string]any{"available": w.Balance - w.Reserved, "credit_limit": *req.CreditLimit}}
			}
			w.CreditLimit = *req.CreditLimit
		}
		if req.Metering != nil {
			w.Metering = *req.Metering
		}
		if req.Status != nil {
			switch *req.Status {
			case WalletClosed:
				if len(l.active) > 0 {
					return change{}, &apierr.Error{Code: apierr.CodeFailedPrecondition, Message: "wallet has active reservations; commit or release them first",
						Details: map[string]any{"active_reservations": len(l.active)}}
				}
				w.Status, w.Suspension = WalletClosed, ""
			case WalletSuspended:
				w.Status, w.Suspension = WalletSuspended, SuspendedByAdmin
			case WalletActive:
				w.Status, w.Suspension = WalletActive, ""
			}
		}
		return change{wallet: w, status: http.StatusOK}, nil
	})
	if err != nil {
		return Wallet{}, err
	}
	_ = out
	return s.GetWallet(ctx, project)
}

// TopUp deposits amount (admin or billing only: a project must never
// credit itself).
func (s *Service) TopUp(ctx context.Context, project string, req TopUpRequest, idem *IdempotencyKey) (int, any, error) {
	if err := firstErr(validID("project_id", project, true), validAmount("amount", req.Amount), validText("description", req.Description)); err != nil {
		return 0, nil, err
	}
	if err := s.authorizeOn(ctx, permWalletsTopup, project); err != nil {
		return 0, nil, err
	}
	return s.apply(ctx, project, idem, func(l *ledger, now time.Time) (change, error) {
		w := l.wallet.Value
		if w.Status == WalletClosed {
			return change{}, apierr.New(apierr.CodeFailedPrecondition, "wallet %s is closed", project)
		}
		if overflows(w.Balance, req.Amount) {
			return change{}, &apierr.Error{Code: apierr.CodeValidation, Message: "the balance would exceed 10^15 minor units",
				Details: map[string]any{"field": "amount", "constraint": string(apierr.Range), "balance": w.Balance}}
		}
		t, op, err := s.record(&w, Transaction{Amount: req.Amount, Type: TxnDeposit, Description: req.Description}, now)
		if err != nil {
			return change{}, err
		}
		settle(&w, now)
		return change{wallet: w, ops: []state.Op{op}, status: http.StatusOK, result: MoneyMove{Wallet: w, Transaction: t}}, nil
	})
}

// Charge takes amount from the wallet at once (metered usage); it needs
// that much available credit.
func (s *Service) Charge(ctx context.Context, project string, req ChargeRequest, idem *IdempotencyKey) (int, any, error) {
	if err := firstErr(validID("project_id", project, true), validAmount("amount", req.Amount), validText("description", req.Description),
		validText("resource_type", req.ResourceType), validID("resource_id", req.ResourceID, false)); err != nil {
		return 0, nil, err
	}
	if err := s.authorizeOn(ctx, permWalletsCharge, project); err != nil {
		return 0, nil, err
	}
	return s.apply(ctx, project, idem, func(l *ledger, now time.Time) (change, error) {
		w := l.wallet.Value
		if w.Status == WalletClosed {
			return change{}, apierr.New(apierr.CodeFailedPrecondition, "wallet %s is closed", project)
		}
		if !covers(w, req.Amount) {
			w.Available = w.Balance - w.Reserved
			return change{}, insufficient(w, req.Amount)
		}
		t, op, err := s.record(&w, Transaction{Amount: -req.Amount, Type: TxnCharge, Description: req.Description,
			ResourceType: req.ResourceType, ResourceID: req.ResourceID}, now)
		if err != nil {
			return change{}, err
		}
		settle(&w, now)
		return change{wallet: w, ops: []state.Op{op}, status: http.StatusOK, result: MoneyMove{Wallet: w, Transaction: t}}, nil
	})
}

// ListTransactions lists a wallet's transactions newest first, optionally of
// one type and within [since, until).
func (s *Service) ListTransactions(ctx context.Context, project, typ string, since, until time.Time, limit int, pageToken string) (TransactionList, error) {
	if err := validID("project_id", project, true); err != nil {
		return TransactionList{}, err
	}
	if typ != "" && typ != TxnDeposit && typ != TxnCharge {
		return TransactionList{}, apierr.Validation("type", apierr.Enum, "type %q must be deposit or charge", typ)
	}
	if err := s.authorizeOn(ctx, permTransactionsList, project); err != nil {
		return TransactionList{}, err
	}
	out := TransactionList{Transactions: []Transaction{}}
	token := pageToken
	// Filters may skip items: keep reading pages until limit are found or
	// the list ends (bounded, so a sparse filter cannot make one request
	// read everything).
	for pages := 0; pages < 20; pages++ {
		page, err := s.st.transactions.List(ctx, project+"/", limit, token)
		if err != nil {
			return TransactionList{}, err
		}
		for _, it := range page.Items {
			t := it.Value
			if (typ == "" || t.Type == typ) && (since.IsZero() || !t.Timestamp.Before(since)) && (until.IsZero() || t.Timestamp.Before(until)) {
				out.Transactions = append(out.Transactions, t)
			}
		}
		token = page.NextPageToken
		if token == "" || len(out.Transactions) >= limit {
			break
		}
	}
	if len(out.Transactions) > limit {
		out.Transactions = out.Transactions[:limit]
		// The page ends inside what was read; resume from the last shown.
		token = state.EncodePageToken(s.st.transactions.Key(txnKey(project, out.Transactions[limit-1].Sequence)) + "\x00")
	}
	out.NextPageToken = token
	return out, nil
}
