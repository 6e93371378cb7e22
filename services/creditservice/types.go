package creditservice

import "time"

// Wallet statuses.
const (
	WalletActive    = "active"
	WalletSuspended = "suspended"
	WalletClosed    = "closed"
)

// Why a wallet is suspended: its credit ran out (money reactivates it), or
// an admin said so (only an admin reactivates it).
const (
	SuspendedNoCredit = "credit_exhausted"
	SuspendedByAdmin  = "admin"
)

// Reservation statuses: a reservation is created active and ends exactly
// once, committed, released or expired (TigerBeetle's pending → post / void
// / timeout).
const (
	ReservationActive    = "active"
	ReservationCommitted = "committed"
	ReservationReleased  = "released"
	ReservationExpired   = "expired"
)

// Transaction types.
const (
	TxnDeposit = "deposit"
	TxnCharge  = "charge"
)

// Wallet is one project's credit. Amounts are integers in the currency's
// minor unit. Available is Balance − Reserved; it may go below zero only
// down to −CreditLimit.
type Wallet struct {
	ProjectID   string `json:"project_id"`
	OrgID       string `json:"org_id"`
	Balance     int64  `json:"balance"`
	Reserved    int64  `json:"reserved"`
	Available   int64  `json:"available"`
	CreditLimit int64  `json:"credit_limit"`
	Currency    string `json:"currency"`
	Status      string `json:"status"`
	Suspension  string `json:"suspension,omitempty"`
	// Metering opts the wallet into server-side metering: services charge
	// it for running resources each period (PlasmaVMC's VMs), and refuse
	// to create what it cannot pay the first period of.
	Metering         bool      `json:"metering"`
	TransactionCount int64     `json:"transaction_count"`
	CreatedAt        time.Time `json:"created_at"`
	UpdatedAt        time.Time `json:"updated_at"`
}

// Reservation holds Amount of a wallet's available credit until it is
// committed (charging ActualAmount), released, or expires at ExpiresAt.
type Reservation struct {
	ID           string     `json:"id"`
	ProjectID    string     `json:"project_id"`
	OrgID        string     `json:"org_id"`
	Amount       int64      `json:"amount"`
	ActualAmount *int64     `json:"actual_amount,omitempty"`
	Status       string     `json:"status"`
	Description  string     `json:"description,omitempty"`
	ResourceType string     `json:"resource_type,omitempty"`
	ResourceID   string     `json:"resource_id,omitempty"`
	Reason       string     `json:"reason,omitempty"`
	ExpiresAt    time.Time  `json:"expires_at"`
	CreatedAt    time.Time  `json:"created_at"`
	EndedAt      *time.Time `json:"ended_at,omitempty"`
}

// Transaction is one change of a wallet's balance: positive for deposits,
// negative for charges. The balance is always the sum of them.
type Transaction struct {
	ID            string    `json:"id"`
	ProjectID     string    `json:"project_id"`
	Amount        int64     `json:"amount"`
	Type          string    `json:"type"`
	Description   string    `json:"description,omitempty"`
	ResourceType  string    `json:"resource_type,omitempty"`
	ResourceID    string    `json:"resource_id,omitempty"`
	ReservationID string    `json:"reservation_id,omitempty"`
	BalanceAfter  int64     `json:"balance_after"`
	Sequence      int64     `json:"sequence"`
	Timestamp     time.Time `json:"timestamp"`
}

// CreateWalletRequest is the body of POST /api/v1/wallets.
type CreateWalletRequest struct {
	ProjectID      string `json:"project_id"`
	OrgID          string `json:"org_id"`
	InitialBalance int64  `json:"initial_balance"`
	Currency       string `json:"currency"`
	CreditLimit    int64  `json:"credit_limit"`
}

// UpdateWalletRequest is the body of PATCH /api/v1/wallets/{project_id}.
type UpdateWalletRequest struct {
	Status      *string `json:"status"`
	CreditLimit *int64  `json:"credit_limit"`
	Metering    *bool   `json:"metering"`
}

// TopUpRequest is the body of POST /api/v1/wallets/{project_id}/topup.
type TopUpRequest struct {
	Amount      int64  `json:"amount"`
	Description string `json:"description"`
}

// ChargeRequest is the body of POST /api/v1/wallets/{project_id}/charge:
// metered usage, charged at once.
type ChargeRequest struct {
	Amount       int64  `json:"amount"`
	Description  string `json:"description"`
	ResourceType string `json:"resource_type"`
	ResourceID   string `json:"resource_id"`
}

// ReserveRequest is the body of POST /api/v1/reservations.
type ReserveRequest struct {
	ProjectID    string `json:"project_id"`
	Amount       int64  `json:"amount"`
	Description  string `json:"description"`
	ResourceType string `json:"resource_type"`
	ResourceID   string `json:"resource_id"`
	TTLSeconds   *int64 `json:"ttl_seconds"`
}

// CommitRequest is the body of POST /api/v1/reservations/{id}/commit.
type CommitRequest struct {
	ActualAmount *int64 `json:"actual_amount"`
	ResourceID   string `json:"resource_id"`
}

// ReleaseRequest is the body of POST /api/v1/reservations/{id}/release.
type ReleaseRequest struct {
	Reason string `json:"reason"`
}

// MoneyMove is the answer to a topup or charge: the wallet after it and the
// transaction that records it.
type MoneyMove struct {
	Wallet      Wallet      `json:"wallet"`
	Transaction Transaction `json:"transaction"`
}

// CommitResult is the answer to a commit.
type CommitResult struct {
	Reservation Reservation  `json:"reservation"`
	Transaction *Transaction `json:"transaction,omitempty"`
	Wallet      Wallet       `json:"wallet"`
}

// TransactionList is a page of a wallet's transactions, newest first.
type TransactionList struct {
	Transactions  []Transaction `json:"transactions"`
	NextPageToken string        `json:"next_page_token,omitempty"`
}

// ReservationList is a page of a project's reservations.
type ReservationList struct {
	Reservations  []Reservation `json:"reservations"`
	NextPageToken string        `json:"next_page_token,omitempty"`
}
