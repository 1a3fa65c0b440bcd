package telemetry

import (
	"context"
	"fmt"
	"strings"

	"github.com/exaring/otelpgx"
	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/extra/redisotel/v9"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/metric/noop"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
)

// Postgres returns the pgx tracer that makes a client span of every
// statement run under a recording span, named by its operation (SELECT,
// INSERT, ...) with db.system.name, db.operation.name and db.query.text:
// the statement with its $n placeholders, never the bound values. It
// returns nil when tracing is off.
func (t *Tracing) Postgres() pgx.QueryTracer {
	if t.sdk == nil {
		return nil
	}
	return otelpgx.NewTracer(
		otelpgx.WithTracerProvider(t.sdk),
		otelpgx.WithMeterProvider(noop.NewMeterProvider()),
		otelpgx.WithDisableAcquireTracer(),
	)
}

// InstrumentRedis makes a client span of every command (and pipeline) rdb
// sends, named by the command (get, evalsha, redis.pipeline ...), with
// db.system.name and db.operation.name (the command, or BATCH <command>
// for a pipeline of one command) and the server's address. The command
// text is off: no key, argument or value reaches an attribute. It does
// nothing when tracing is off.
func (t *Tracing) InstrumentRedis(rdb redis.UniversalClient) error {
	if t.sdk == nil {
		return nil
	}
	err := redisotel.InstrumentTracing(rdb,
		redisotel.WithTracerProvider(t.sdk),
		redisotel.WithDBStatement(false),
		redisotel.WithCallerEnabled(false),
		redisotel.WithAttributes(semconv.DBSystemNameRedis),
	)
	if err != nil {
		return fmt.Errorf("trace redis: %w", err)
	}
	// The operation name is set inside redisotel's span: on each node's
	// client, after redisotel's hook, as redisotel hooks them.
	if c, ok := rdb.(*redis.ClusterClient); ok {
		c.OnNewNode(func(n *redis.Client) { n.AddHook(redisOperation{}) })
	} else {
		rdb.AddHook(redisOperation{})
	}
	return nil
}

// redisOperation adds db.operation.name to the span of each command.
type redisOperation struct{}

func (redisOperation) DialHook(next redis.DialHook) redis.DialHook { return next }

func (redisOperation) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if span := trace.SpanFromContext(ctx); span.IsRecording() {
			span.SetAttributes(semconv.DBOperationName(strings.ToUpper(cmd.Name())))
		}
		return next(ctx, cmd)
	}
}

func (redisOperation) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if span := trace.SpanFromContext(ctx); span.IsRecording() && len(cmds) > 0 {
			span.SetAttributes(semconv.DBOperationBatchSize(len(cmds)))
			name := cmds[0].Name()
			same := true
			for _, c := range cmds[1:] {
				same = same && c.Name() == name
			}
			if same { // else the semantic conventions leave it unset
				span.SetAttributes(semconv.DBOperationName("BATCH " + strings.ToUpper(name)))
			}
		}
		return next(ctx, cmds)
	}
}

var _ redis.Hook = redisOperation{}
