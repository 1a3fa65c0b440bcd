package repository

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// existingIDsSQL selects the stored ids among $1 (a uuid[] sent in binary).
const existingIDsSQL = "SELECT id FROM analyses WHERE id = ANY($1::uuid[])"

// ExistingIDs returns those of ids that are stored, in one query (primary
// key lookups), in no particular order. An empty ids answers without a
// query.
func (p *Postgres) ExistingIDs(ctx context.Context, ids []uuid.UUID) ([]uuid.UUID, error) {
	if len(ids) == 0 {
		return []uuid.UUID{}, nil
	}
	op := fmt.Sprintf("look up %d analysis ids", len(ids))
	arg := make([][16]byte, len(ids)) // not uuid.UUID: pgx would send that as text
	for i, id := range ids {
		arg[i] = id
	}
	var found []uuid.UUID
	err := p.withPgx(ctx, func(c *pgx.Conn) error {
		rows, err := c.Query(ctx, existingIDsSQL, arg)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id uuid.UUID
			if err := rows.Scan((*[16]byte)(&id)); err != nil { // binary, not uuid's sql.Scanner
				return err
			}
			found = append(found, id)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, translate(op, err)
	}
	return found, nil
}
