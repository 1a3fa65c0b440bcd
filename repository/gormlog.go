package repository

import (
	"github.com/analysis-cache/service/domain"

	"context"
	"errors"
	"log/slog"
	"regexp"
	"time"

	"gorm.io/gorm/logger"
)

// newGormLogger sends gorm's statement log to slog: failed statements at
// error level (expected outcomes excepted), slow ones at warn, nothing else.
// SQL is logged with its $n placeholders, never with bound values, so user
// data (notes in particular) never reaches the log.
func newGormLogger(log *slog.Logger, slow time.Duration) logger.Interface {
	return &gormLogger{log: log, slow: slow, level: logger.Warn}
}

type gormLogger struct {
	log   *slog.Logger
	slow  time.Duration
	level logger.LogLevel
}

func (l *gormLogger) LogMode(level logger.LogLevel) logger.Interface {
	c := *l
	c.level = level
	return &c
}

func (l *gormLogger) Info(ctx context.Context, msg string, args ...any) {
	if l.level >= logger.Info {
		l.log.InfoContext(ctx, msg, "args", len(args))
	}
}

func (l *gormLogger) Warn(ctx context.Context, msg string, args ...any) {
	if l.level >= logger.Warn {
		l.log.WarnContext(ctx, msg, "args", len(args))
	}
}

func (l *gormLogger) Error(ctx context.Context, msg string, args ...any) {
	if l.level >= logger.Error {
		l.log.ErrorContext(ctx, msg, "args", len(args))
	}
}

// ParamsFilter drops bound values before gorm renders the SQL it logs
// (gorm's ParameterizedQueries: true).
func (l *gormLogger) ParamsFilter(_ context.Context, sql string, _ ...any) (string, []any) {
	return sql, nil
}

func (l *gormLogger) Trace(ctx context.Context, begin time.Time, fc func() (string, int64), err error) {
	if l.level <= logger.Silent {
		return
	}
	elapsed := time.Since(begin)
	switch {
	case err != nil && !expected(err) && l.level >= logger.Error:
		sql, rows := statement(fc)
		l.log.ErrorContext(ctx, "postgres statement failed", "sql", sql, "rows", rows, "elapsed", elapsed, "err", err)
	case l.slow > 0 && elapsed > l.slow && l.level >= logger.Warn:
		sql, rows := statement(fc)
		l.log.WarnContext(ctx, "slow postgres statement", "sql", sql, "rows", rows, "elapsed", elapsed)
	case l.level >= logger.Info:
		sql, rows := statement(fc)
		l.log.DebugContext(ctx, "postgres statement", "sql", sql, "rows", rows, "elapsed", elapsed)
	}
}

// unboundPlaceholder is how gorm renders $n when ParamsFilter dropped the values.
var unboundPlaceholder = regexp.MustCompile(`\$(\d+)\$`)

// statement returns the logged SQL with its placeholders as Postgres writes them.
func statement(fc func() (string, int64)) (string, int64) {
	sql, rows := fc()
	return unboundPlaceholder.ReplaceAllString(sql, "$$$1"), rows
}

// expected reports errors that are answers, not failures: the caller turns
// them into 404/409 or stopped waiting, and logs if it must.
func expected(err error) bool {
	code := domain.ErrorCode(err)
	return errors.Is(err, logger.ErrRecordNotFound) ||
		errors.Is(err, context.Canceled) ||
		code == domain.ENOTFOUND || code == domain.EPRECONDITION ||
		pgCode(err) == sqlstateUniqueViolation
}
