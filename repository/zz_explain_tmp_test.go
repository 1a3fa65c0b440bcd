package repository

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

func TestZZExplainUnnest(t *testing.T) {
	p := openTestRepo(t, nil)
	ctx := context.Background()
	for round := 0; round < 8; round++ {
		items := seedItems(1000, uuid.New())
		cols, err := newUnnestColumns(items)
		if err != nil {
			t.Fatal(err)
		}
		err = p.withPgx(ctx, func(c *pgx.Conn) error {
			rows, err := c.Query(ctx, "EXPLAIN (ANALYZE, BUFFERS, TIMING) "+insertUnnestSQL, cols.args()...)
			if err != nil {
				return err
			}
			lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if round >= 6 {
				for _, l := range lines {
					fmt.Println(l)
				}
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}
