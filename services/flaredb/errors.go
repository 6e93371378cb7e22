package flaredb

import (
	"context"
	"errors"

	"github.com/photoncloud/photon/internal/apierr"
	"github.com/photoncloud/photon/services/flaredb/engine"
	"github.com/photoncloud/photon/services/flaredb/sqlcheck"
)

// apiError is the one place engine and sqlcheck errors become API errors.
func apiError(err error) error {
	if err == nil {
		return nil
	}
	var ae *apierr.Error
	if errors.As(err, &ae) {
		return err
	}
	var se *engine.SQLError
	var nd *sqlcheck.NotDeterministicError
	var us *sqlcheck.UnsupportedStatementError
	var ms *sqlcheck.MultipleStatementsError
	var it *sqlcheck.InvalidTextError
	var nl *engine.NotLeaderError
	switch {
	case errors.As(err, &se):
		details := map[string]any{"statement": se.Statement, "sqlite_code": se.Code}
		if errors.Is(err, engine.ErrConstraint) {
			return &apierr.Error{Code: apierr.CodeConstraint, Message: se.Message, Details: details, Err: err}
		}
		return &apierr.Error{Code: apierr.CodeSQL, Message: se.Message, Details: details, Err: err}
	case errors.As(err, &nd):
		return &apierr.Error{Code: apierr.CodeSQL, Message: nd.Func + " refused: " + nd.Reason,
			Details: map[string]any{"function": nd.Func, "offset": nd.Offset}, Err: err}
	case errors.As(err, &us):
		return &apierr.Error{Code: apierr.CodeSQL, Message: us.Statement + " refused: " + us.Reason,
			Details: map[string]any{"statement_kind": us.Statement}, Err: err}
	case errors.As(err, &ms):
		return &apierr.Error{Code: apierr.CodeSQL, Err: err,
			Message: "one statement per query; send several as {\"statements\": [...]} to run them as one transaction"}
	case errors.As(err, &it):
		return &apierr.Error{Code: apierr.CodeSQL, Message: it.Reason, Details: map[string]any{"offset": it.Offset}, Err: err}
	case errors.Is(err, sqlcheck.ErrEmpty), errors.Is(err, engine.ErrEmpty):
		return apierr.Validation("query", apierr.Required, "query holds no SQL statement")
	case errors.Is(err, engine.ErrBadParam):
		return &apierr.Error{Code: apierr.CodeValidation, Message: err.Error(), Err: err,
			Details: map[string]any{"field": "params", "constraint": string(apierr.Type)}}
	case errors.Is(err, engine.ErrBadConsistency):
		return apierr.Validation("consistency", apierr.Enum, "consistency must be linearizable, lease or stale")
	case errors.Is(err, engine.ErrBadDatabase):
		return apierr.Validation("project_id", apierr.Format, "%v", err)
	case errors.Is(err, engine.ErrIndeterminate):
		return &apierr.Error{Code: apierr.CodeUnavailable, Err: err, Details: map[string]any{"indeterminate": true},
			Message: "leadership changed while the write was in flight: it may or may not have been applied"}
	case errors.As(err, &nl), errors.Is(err, engine.ErrNoLeader):
		return apierr.Wrap(apierr.CodeUnavailable, err, "no FlareDB leader is reachable; retry shortly")
	case errors.Is(err, engine.ErrClosed), errors.Is(err, engine.ErrNodeFailed):
		return apierr.Wrap(apierr.CodeUnavailable, err, "this FlareDB node is not serving")
	case errors.Is(err, context.DeadlineExceeded):
		// A write may have reached the log before the clock ran out.
		return &apierr.Error{Code: apierr.CodeUnavailable, Err: err, Details: map[string]any{"indeterminate": true},
			Message: "the request timed out: a write may or may not have been applied"}
	}
	return err
}
