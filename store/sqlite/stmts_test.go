package sqlite

import (
	"strings"
	"testing"
)

// TestRowInsertChunks: every row count splits into statements that insert
// exactly that many rows, each within SQLite's parameter limit, and each
// statement text has one placeholder per value.
func TestRowInsertChunks(t *testing.T) {
	for _, r := range []rowInsert{insertDigests, insertPackages, insertPredicates} {
		largest := 0
		for _, rows := range []int{0, 1, 2, 3, 7, 50, 99, 100, 1000, 3277, 10000} {
			total := 0
			for _, n := range r.chunks(rows) {
				if n&(n-1) != 0 || n*r.cols > maxParams {
					t.Fatalf("%d columns, %d rows: chunk of %d rows", r.cols, rows, n)
				}
				if got := strings.Count(r.sql(n), "?"); got != n*r.cols {
					t.Fatalf("%d columns: statement for %d rows has %d placeholders, want %d", r.cols, n, got, n*r.cols)
				}
				largest = max(largest, n)
				total += n
			}
			if total != rows {
				t.Errorf("%d columns: chunks(%d) insert %d rows", r.cols, rows, total)
			}
		}
		if largest*2*r.cols <= maxParams {
			t.Errorf("%d columns: largest chunk %d rows; %d would fit", r.cols, largest, largest*2)
		}
	}
}
