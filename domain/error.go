package domain

import (
	"errors"
	"fmt"
)

// Error codes. Every error the service returns to a client carries one of
// these; api/ maps each to exactly one HTTP status in a single table.
const (
	ENOTFOUND         = "not_found"           // the analysis does not exist
	ECONFLICT         = "conflict"            // the id is already taken
	EPRECONDITION     = "precondition_failed" // If-Match did not match the current version
	EINVALID          = "invalid"             // input the validation layer did not catch
	EUNAVAILABLE      = "unavailable"         // Postgres cannot be reached
	EQUEUEFULL        = "queue_full"          // write-behind queue over WRITE_BEHIND_MAX_PENDING
	EQUEUEUNAVAILABLE = "queue_unavailable"   // Redis cannot take write-behind entries
	ECACHEUNAVAILABLE = "cache_unavailable"   // Redis failed an operation that has no Postgres fallback (admin)
	EINTERNAL         = "internal"            // anything else; logged, never shown
)

// Error is the service's one error type: a code the HTTP layer maps to a
// status, a message safe to show to a client, and the wrapped cause.
type Error struct {
	Code    string
	Message string
	Err     error
}

// Errorf returns an *Error with the given code and a formatted client-safe message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Wrap returns an *Error with code and message that keeps err as its cause.
func Wrap(code, message string, err error) *Error {
	return &Error{Code: code, Message: message, Err: err}
}

// Error implements error.
func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// ErrorCode returns the code of the first *Error in err's chain, EINTERNAL
// for any other non-nil error and "" for nil.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the client-safe message of the first *Error in err's
// chain, or "Internal Server Error" for any other error.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "Internal Server Error"
}

// Common errors with the contract's exact messages.
var (
	// ErrAnalysisNotFound is returned when an analysis id has no row.
	ErrAnalysisNotFound = &Error{Code: ENOTFOUND, Message: "Analysis not found"}
	// ErrPrecondition is returned when If-Match names another version.
	ErrPrecondition = &Error{Code: EPRECONDITION, Message: "Precondition Failed"}
)

// DatabaseUnavailable wraps a connection-level Postgres failure.
func DatabaseUnavailable(err error) *Error {
	return Wrap(EUNAVAILABLE, "Database unavailable", err)
}

// CacheUnavailable wraps a Redis failure of an operation that cannot fall
// back to Postgres (the admin API's invalidations and stats), so it is
// answered 503 "Cache unavailable" with Retry-After instead of a 500.
func CacheUnavailable(err error) *Error {
	return Wrap(ECACHEUNAVAILABLE, "Cache unavailable", err)
}
