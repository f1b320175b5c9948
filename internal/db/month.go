package db

// MonthSQL returns the SQL expression for the UTC calendar month
// ('YYYY-MM') of the time column col, for grouping by month (part of the
// dialect seam: PostgreSQL formats the timestamptz in UTC, SQLite takes the
// first seven characters of the fixed UTC text format).
func (d Dialect) MonthSQL(col string) string {
	if d == Postgres {
		return "to_char(" + col + " AT TIME ZONE 'UTC', 'YYYY-MM')"
	}
	return "substr(" + col + ", 1, 7)"
}
