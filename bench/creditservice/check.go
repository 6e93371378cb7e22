package main

import "fmt"

// walletState is one wallet as read back after the run, with the sums its
// invariants compare it to.
type walletState struct {
	project           string
	balance, reserved int64
	available         int64 // as the side reports it
	txSum             int64 // sum of all its transactions (the initial deposit included)
	charges           int64 // how many charge transactions it holds
	activeSum         int64 // sum of its active reservations
}

// check is the invariant check of one side over all its wallets.
type check struct {
	wallets    int
	charges    int64
	violations []string
}

// add checks one wallet: balance == sum of transactions, reserved == sum of
// active reservations, available == balance − reserved ≥ 0, and exactly one
// charge per commit the clients saw succeed.
func (c *check) add(w walletState, commits map[string]int64) {
	c.wallets++
	c.charges += w.charges
	bad := func(format string, args ...any) {
		c.violations = append(c.violations, w.project+": "+fmt.Sprintf(format, args...))
	}
	if w.balance != w.txSum {
		bad("balance %d != sum of transactions %d", w.balance, w.txSum)
	}
	if w.reserved != w.activeSum {
		bad("reserved %d != sum of active reservations %d", w.reserved, w.activeSum)
	}
	if w.available != w.balance-w.reserved {
		bad("available %d != balance %d − reserved %d", w.available, w.balance, w.reserved)
	}
	if w.available < 0 {
		bad("available %d < 0", w.available)
	}
	if want := commits[w.project]; w.charges != want {
		bad("%d charge transactions, but %d commits succeeded", w.charges, want)
	}
}
