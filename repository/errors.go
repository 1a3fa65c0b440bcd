package repository

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/analysis-cache/service/domain"
)

// Postgres error codes (SQLSTATE) the repository gives a meaning to.
const (
	sqlstateUniqueViolation  = "23505"
	sqlstateCheckViolation   = "23514"
	sqlstateNotNullViolation = "23502"
	sqlstateTooManyConns     = "53300"
	sqlstateAdminShutdown    = "57P01"
	sqlstateCrashShutdown    = "57P02"
	sqlstateCannotConnectNow = "57P03"
	sqlstateDatabaseDropped  = "57P04"
)

// unavailable reports whether err means Postgres cannot be reached or the
// connection was lost, as opposed to a statement failing on a live server.
func unavailable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case sqlstateTooManyConns, sqlstateAdminShutdown, sqlstateCrashShutdown,
			sqlstateCannotConnectNow, sqlstateDatabaseDropped:
			return true
		}
		return strings.HasPrefix(pgErr.Code, "08") // connection_exception class
	}
	var connectErr *pgconn.ConnectError
	if errors.As(err, &connectErr) {
		return true // includes a context deadline hit while dialing
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return true
	}
	return errors.Is(err, driver.ErrBadConn) ||
		errors.Is(err, net.ErrClosed) ||
		errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, io.EOF)
}

// pgCode returns the SQLSTATE of err, or "".
func pgCode(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

// translate is Translate for analyses.
func translate(op string, err error) error { return Translate("Analysis", op, err) }

// Translate turns a driver error of a statement on entity ("Analysis",
// "Project") into the domain's vocabulary: connection failures become
// EUNAVAILABLE, a taken id ECONFLICT ("{entity} already exists"), other
// constraint violations EINVALID ("{entity} violates a constraint"), and
// anything else is wrapped with what was being done (op, e.g. "get analysis
// <id>"). A cancelled or expired caller context is returned wrapped but with
// its identity intact, so callers can tell "client went away" from an
// outage. Every store of the service translates its errors with it.
func Translate(entity, op string, err error) error {
	if err == nil {
		return nil
	}
	var de *domain.Error
	if errors.As(err, &de) {
		return err // already translated (e.g. inside a transaction closure)
	}
	if unavailable(err) {
		return domain.DatabaseUnavailable(fmt.Errorf("%s: %w", op, err))
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w", op, err)
	}
	switch pgCode(err) {
	case sqlstateCheckViolation, sqlstateNotNullViolation:
		return domain.Wrap(domain.EINVALID, entity+" violates a constraint", fmt.Errorf("%s: %w", op, err))
	case sqlstateUniqueViolation: // the only unique constraint is the id
		return domain.Wrap(domain.ECONFLICT, entity+" already exists", fmt.Errorf("%s: %w", op, err))
	}
	return fmt.Errorf("%s: %w", op, err)
}

// notFound is ErrAnalysisNotFound with the id in its cause, keeping the
// contract's message and code.
func notFound(op string) error {
	return &domain.Error{
		Code:    domain.ENOTFOUND,
		Message: domain.ErrAnalysisNotFound.Message,
		Err:     fmt.Errorf("%s: no such row", op),
	}
}

// preconditionFailed is ErrPrecondition with the versions in its cause.
func preconditionFailed(op string, want, have int64) error {
	return &domain.Error{
		Code:    domain.EPRECONDITION,
		Message: domain.ErrPrecondition.Message,
		Err:     fmt.Errorf("%s: if-version %d, stored version %d", op, want, have),
	}
}
