package chstore

import (
	"context"
	"fmt"
)

// CountRows returns the number of rows in the events table as stored, before
// deduplication: cheap, and at least CountEvents. Progress reports use it;
// anything that must not see duplicates uses CountEvents.
func (s *Store) CountRows(ctx context.Context) (uint64, error) {
	var n uint64
	if err := s.conn.QueryRow(ctx, "SELECT count() FROM "+s.db+".events").Scan(&n); err != nil {
		return 0, fmt.Errorf("count rows: %w", err)
	}
	return n, nil
}
