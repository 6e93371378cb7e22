package creditservice

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/photoncloud/photon/internal/apierr"
	"github.com/photoncloud/photon/internal/auth"
	"github.com/photoncloud/photon/internal/ids"
	"github.com/photoncloud/photon/internal/state"
)

// Reserve holds amount of a project's available credit until it is
// committed, released, or its TTL passes.
func (s *Service) Reserve(ctx context.Context, req ReserveRequest, idem *IdempotencyKey) (int, any, error) {
	if err := firstErr(validID("project_id", req.ProjectID, true), validAmount("amount", req.Amount), validText("description", req.Description),
		validText("resource_type", req.ResourceType), validID("resource_id", req.ResourceID, false)); err != nil {
		return 0, nil, err
	}
	ttl := s.cfg.DefaultReservationTTL
	if req.TTLSeconds != nil {
		max := int64(s.cfg.MaxReservationTTL / time.Second)
		if *req.TTLSeconds < 1 || *req.TTLSeconds > max {
			return 0, nil, &apierr.Error{Code: apierr.CodeValidation, Message: "ttl_seconds must be from 1 to " + itoa(max),
				Details: map[string]any{"field": "ttl_seconds", "constraint": string(apierr.Range), "min": 1, "max": max}}
		}
		ttl = time.Duration(*req.TTLSeconds) * time.Second
	}
	if err := s.authorizeOn(ctx, permReservationsCreate, req.ProjectID); err != nil {
		return 0, nil, err
	}
	return s.apply(ctx, req.ProjectID, idem, func(l *ledger, now time.Time) (change, error) {
		w := l.wallet.Value
		switch {
		case w.Status == WalletClosed:
			return change{}, apierr.New(apierr.CodeFailedPrecondition, "wallet %s is closed", w.ProjectID)
		case w.Status == WalletSuspended, !covers(w, req.Amount):
			w.Available = w.Balance - w.Reserved
			return change{}, insufficient(w, req.Amount)
		case len(l.active) >= maxActive:
			return change{}, &apierr.Error{Code: apierr.CodeFailedPrecondition,
				Message: "the wallet has " + itoa(maxActive) + " active reservations, the most it may; commit or release some",
				Details: map[string]any{"active_reservations": len(l.active)}}
		}
		r := Reservation{ID: ids.New("rsv"), ProjectID: w.ProjectID, OrgID: w.OrgID, Amount: req.Amount, Status: ReservationActive,
			Description: req.Description, ResourceType: req.ResourceType, ResourceID: req.ResourceID,
			ExpiresAt: now.Add(ttl), CreatedAt: now}
		w.Reserved += r.Amount
		rec, err := s.st.reservations.CreateOp(w.ProjectID+"/"+r.ID, r)
		if err != nil {
			return change{}, err
		}
		owner, err := s.st.owners.CreateOp(r.ID, reservationOwner{ProjectID: w.ProjectID})
		if err != nil {
			return change{}, err
		}
		l.active[r.ID] = activeEntry{Amount: r.Amount, ExpiresAt: r.ExpiresAt}
		return change{wallet: w, ops: []state.Op{rec, owner}, status: http.StatusCreated, result: r}, nil
	})
}

// owner finds reservation id's project and authorizes perm on it: NOT_FOUND
// for another project's reservation, exactly as for a missing one.
func (s *Service) owner(ctx context.Context, perm, id string) (string, error) {
	if _, err := auth.Caller(ctx); err != nil {
		return "", err
	}
	if err := validID("id", id, true); err != nil {
		return "", err
	}
	// Who owns a reservation and which org a wallet is in never change.
	o, err := s.st.owners.GetLocal(ctx, id)
	if err != nil {
		return "", err
	}
	w, err := s.st.wallets.GetLocal(ctx, o.Value.ProjectID)
	if err != nil {
		return "", err
	}
	if err := auth.RequireOn(ctx, perm, target(w.Value.Wallet), "reservation", id); err != nil {
		return "", err
	}
	return o.Value.ProjectID, nil
}

// GetReservation returns a reservation; one past its TTL shows as expired
// even before the sweeper has ended it.
func (s *Service) GetReservation(ctx context.Context, id string) (Reservation, error) {
	project, err := s.owner(ctx, permReservationsGet, id)
	if err != nil {
		return Reservation{}, err
	}
	it, err := s.st.reservations.Get(ctx, project+"/"+id)
	if err != nil {
		return Reservation{}, err
	}
	return asOf(it.Value, s.now().UTC()), nil
}

// asOf is r as of now: active past its TTL is expired.
func asOf(r Reservation, now time.Time) Reservation {
	if r.Status == ReservationActive && !r.ExpiresAt.After(now) {
		r.Status = ReservationExpired
		end := r.ExpiresAt
		r.EndedAt = &end
	}
	return r
}

// ListReservations lists a project's reservations, optionally of one status.
func (s *Service) ListReservations(ctx context.Context, project, status string, limit int, pageToken string) (ReservationList, error) {
	if err := validID("project_id", project, true); err != nil {
		return ReservationList{}, err
	}
	switch status {
	case "", ReservationActive, ReservationCommitted, ReservationReleased, ReservationExpired:
	default:
		return ReservationList{}, apierr.Validation("status", apierr.Enum, "status %q must be active, committed, released or expired", status)
	}
	if err := s.authorizeOn(ctx, permReservationsList, project); err != nil {
		return ReservationList{}, err
	}
	page, err := s.st.reservations.List(ctx, project+"/", limit, pageToken)
	if err != nil {
		return ReservationList{}, err
	}
	now := s.now().UTC()
	out := ReservationList{Reservations: []Reservation{}, NextPageToken: page.NextPageToken}
	for _, it := range page.Items {
		r := asOf(it.Value, now)
		if status == "" || r.Status == status {
			out.Reservations = append(out.Reservations, r)
		}
	}
	return out, nil
}

// Commit ends an active reservation by charging actual_amount (default: all
// of it); the rest returns to available.
func (s *Service) Commit(ctx context.Context, id string, req CommitRequest, idem *IdempotencyKey) (int, any, error) {
	if err := validID("resource_id", req.ResourceID, false); err != nil {
		return 0, nil, err
	}
	if req.ActualAmount != nil && (*req.ActualAmount < 0 || *req.ActualAmount > MaxAmount) {
		return 0, nil, &apierr.Error{Code: apierr.CodeValidation, Message: "actual_amount must be from 0 to the reserved amount",
			Details: map[string]any{"field": "actual_amount", "constraint": string(apierr.Range), "min": 0}}
	}
	project, err := s.owner(ctx, permReservationsCommit, id)
	if err != nil {
		return 0, nil, err
	}
	return s.apply(ctx, project, idem, func(l *ledger, now time.Time) (change, error) {
		r, err := s.activeReservation(ctx, l, id)
		if err != nil {
			return change{}, err
		}
		actual := r.Amount
		if req.ActualAmount != nil {
			actual = *req.ActualAmount
		}
		if actual > r.Amount {
			return change{}, &apierr.Error{Code: apierr.CodeValidation, Message: "actual_amount exceeds the reserved amount",
				Details: map[string]any{"field": "actual_amount", "constraint": string(apierr.Range), "min": 0, "max": r.Amount}}
		}
		w := l.wallet.Value
		w.Reserved -= r.Amount
		var ops []state.Op
		var txn *Transaction
		if actual > 0 {
			t, op, err := s.record(&w, Transaction{Amount: -actual, Type: TxnCharge, Description: r.Description,
				ResourceType: r.ResourceType, ResourceID: firstNonEmpty(req.ResourceID, r.ResourceID), ReservationID: r.ID}, now)
			if err != nil {
				return change{}, err
			}
			ops, txn = append(ops, op), &t
		}
		r.Status, r.ActualAmount, r.EndedAt = ReservationCommitted, &actual, &now
		if req.ResourceID != "" {
			r.ResourceID = req.ResourceID
		}
		end, err := s.end(l, r)
		if err != nil {
			return change{}, err
		}
		settle(&w, now)
		return change{wallet: w, ops: append(ops, end...), status: http.StatusOK, result: CommitResult{Reservation: r, Transaction: txn, Wallet: w}}, nil
	})
}

// Release ends an active reservation without charging; its amount returns
// to available.
func (s *Service) Release(ctx context.Context, id string, req ReleaseRequest, idem *IdempotencyKey) (int, any, error) {
	if err := validText("reason", req.Reason); err != nil {
		return 0, nil, err
	}
	project, err := s.owner(ctx, permReservationsRelease, id)
	if err != nil {
		return 0, nil, err
	}
	return s.apply(ctx, project, idem, func(l *ledger, now time.Time) (change, error) {
		r, err := s.activeReservation(ctx, l, id)
		if err != nil {
			return change{}, err
		}
		w := l.wallet.Value
		w.Reserved -= r.Amount
		r.Status, r.Reason, r.EndedAt = ReservationReleased, req.Reason, &now
		end, err := s.end(l, r)
		if err != nil {
			return change{}, err
		}
		return change{wallet: w, ops: end, status: http.StatusOK, result: r}, nil
	})
}

// activeReservation reads reservation id of the ledger's project, which
// must still be active (the ledger has already expired what is past its
// TTL): else 409 FAILED_PRECONDITION naming its state.
func (s *Service) activeReservation(ctx context.Context, l *ledger, id string) (Reservation, error) {
	it, err := s.st.reservations.Get(ctx, l.wallet.ID+"/"+id)
	if err != nil {
		return Reservation{}, err
	}
	r := it.Value
	if _, active := l.active[id]; !active {
		if r.Status == ReservationActive {
			// Expired by this very change (see apply).
			r.Status = ReservationExpired
		}
		return Reservation{}, &apierr.Error{Code: apierr.CodeFailedPrecondition,
			Message: "reservation " + id + " is " + r.Status + ", not active",
			Details: map[string]any{"id": id, "status": r.Status}}
	}
	return r, nil
}

// end writes r's final state and drops it from the wallet's active ones.
func (s *Service) end(l *ledger, r Reservation) ([]state.Op, error) {
	put, err := s.st.reservations.PutOp(r.ProjectID+"/"+r.ID, r, 0)
	if err != nil {
		return nil, err
	}
	delete(l.active, r.ID)
	return []state.Op{put}, nil
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
