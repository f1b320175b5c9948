package db

// BytewiseSQL returns the text expression expr compared byte by byte
// (part of the dialect seam): PostgreSQL adds COLLATE "C", SQLite compares
// text that way already. A prefix p is then exactly the range
// [p, p || U+10FFFF), whatever the database's collation, so a btree index
// on the same expression serves prefix search and its order; the index
// must be declared on exactly this expression.
func (d Dialect) BytewiseSQL(expr string) string {
	if d == Postgres {
		return expr + ` COLLATE "C"`
	}
	return expr
}
