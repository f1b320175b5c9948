package migrations_test

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/dbtest"
)

// TestMigrationParity applies both migration sets (SQLite and PostgreSQL)
// and compares the schemas they build: tables; columns with their
// normalised type, nullability and default; indexes (name, columns in
// order with direction, unique, partial predicate); primary keys, unique
// constraints, foreign keys, the number of CHECK constraints per table,
// which (table, event) the guard triggers cover, and views with their
// column names in order.
//
// Types are normalised to what the application can tell apart:
//
//	text    TEXT, VARCHAR, CHARACTER VARYING, CHAR
//	int     INTEGER, INT, SMALLINT, BIGINT, BIGSERIAL (PostgreSQL data types integer, bigint, smallint)
//	time    TIMESTAMPTZ / timestamp with(out) time zone (PostgreSQL), DATETIME / TIMESTAMP (SQLite: text in one fixed format)
//	bool    BOOLEAN (PostgreSQL), BOOLEAN (SQLite: an integer 0/1)
//	bytes   BYTEA, BLOB
//	number  NUMERIC, DECIMAL, REAL, DOUBLE PRECISION
//
// Defaults are compared after removing PostgreSQL casts ('x'::text → 'x')
// and writing booleans as 0/1; an auto-increment key (BIGSERIAL's nextval,
// SQLite's INTEGER PRIMARY KEY AUTOINCREMENT) counts as no default.
// Primary-key columns are NOT NULL on both (SQLite reports them nullable).
// Unique constraints are compared by table and columns (their index names
// are generated differently); named indexes by name. An expression key
// (lower(email), which PostgreSQL's indexes carry as lower(email) COLLATE
// "C") is compared only as being an expression: SQLite's PRAGMA reports no
// more. Partial predicates are
// compared after normalising both spellings (casts, parentheses, case,
// `x = TRUE` → `x`, PostgreSQL's `x = ANY (ARRAY[…])` back to `x IN (…)`).
// CHECK expressions themselves are not compared (PostgreSQL rewrites them
// beyond recognition), only their number per table.
//
// A table PostgreSQL partitions (webhook_events, by month: migration 0029)
// is compared through its parent; its partitions, and their copies of the
// parent's indexes, are left out. Its primary and unique keys are compared
// without the partition key's columns, which PostgreSQL requires in them
// and SQLite, with no partitions, has no need of.
func TestMigrationParity(t *testing.T) {
	t.Parallel()
	lite := inspectSQLite(t, dbtest.Open(t, db.SQLite))
	pg := inspectPostgres(t, dbtest.Open(t, db.Postgres))
	if len(lite) < 10 {
		t.Fatalf("SQLite schema has only %d facts", len(lite))
	}
	for _, f := range diff(lite, pg) {
		t.Errorf("only in SQLite: %s", f)
	}
	for _, f := range diff(pg, lite) {
		t.Errorf("only in PostgreSQL: %s", f)
	}
}

// diff returns the facts of a that b lacks, sorted.
func diff(a, b map[string]bool) []string {
	var out []string
	for f := range a {
		if !b[f] {
			out = append(out, f)
		}
	}
	sort.Strings(out)
	return out
}

// normType maps a column type of either dialect to its family.
func normType(t string) string {
	t = strings.ToLower(strings.TrimSpace(t))
	if i := strings.IndexByte(t, '('); i >= 0 {
		t = strings.TrimSpace(t[:i])
	}
	switch {
	case t == "text" || strings.HasPrefix(t, "varchar") || strings.HasPrefix(t, "character") || t == "char":
		return "text"
	case t == "integer" || t == "int" || t == "bigint" || t == "smallint" || t == "bigserial" || t == "serial" || t == "int8" || t == "int4":
		return "int"
	case strings.HasPrefix(t, "timestamp") || t == "datetime" || t == "timestamptz":
		return "time"
	case t == "boolean" || t == "bool":
		return "bool"
	case t == "bytea" || t == "blob":
		return "bytes"
	case t == "numeric" || t == "decimal" || t == "real" || t == "double precision":
		return "number"
	}
	return "?" + t
}

var (
	castRE     = regexp.MustCompile(`::(character varying|timestamp with(out)? time zone|double precision|[a-z_0-9]+)(\[\])?`)
	anyArrayRE = regexp.MustCompile(`(\w+) = any \(array\[([^\]]*)\]\)`)
)

// normDefault makes a column default comparable across dialects.
func normDefault(d *string) string {
	if d == nil {
		return "none"
	}
	s := strings.ToLower(strings.TrimSpace(*d))
	if strings.HasPrefix(s, "nextval(") {
		return "none"
	}
	s = castRE.ReplaceAllString(s, "")
	s = strings.Trim(s, "()")
	switch s {
	case "false":
		return "0"
	case "true":
		return "1"
	}
	return s
}

// normPred makes a partial-index predicate comparable across dialects.
func normPred(p string) string {
	if p == "" {
		return ""
	}
	s := castRE.ReplaceAllString(strings.ToLower(p), "")
	s = anyArrayRE.ReplaceAllString(s, "$1 in ($2)")
	s = strings.NewReplacer("(", "", ")", "", " = true", "", "= true", "").Replace(s)
	return strings.Join(strings.Fields(s), " ")
}

type column struct {
	Table, Name, Type string
	NotNull, PK       bool
	Default           *string
}

func columnFact(c column) string {
	nn := "null"
	if c.NotNull || c.PK {
		nn = "not null"
	}
	return fmt.Sprintf("column %s.%s %s %s default=%s", c.Table, c.Name, normType(c.Type), nn, normDefault(c.Default))
}

func inspectSQLite(t *testing.T, d *db.DB) map[string]bool {
	t.Helper()
	g := d.Gorm
	facts := map[string]bool{}
	var tables []struct{ Name, SQL string }
	if err := g.Raw(`SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`).Scan(&tables).Error; err != nil {
		t.Fatal(err)
	}
	for _, tb := range tables {
		facts["table "+tb.Name] = true
		facts[fmt.Sprintf("checks %s %d", tb.Name, strings.Count(strings.ToUpper(tb.SQL), "CHECK ("))] = true
		var cols []struct {
			Cid       int
			Name      string
			Type      string
			NotNull   bool    `gorm:"column:notnull"`
			DfltValue *string `gorm:"column:dflt_value"`
			PK        int     `gorm:"column:pk"`
		}
		if err := g.Raw(fmt.Sprintf("PRAGMA table_info(%q)", tb.Name)).Scan(&cols).Error; err != nil {
			t.Fatal(err)
		}
		var pk []string
		sort.Slice(cols, func(i, j int) bool { return cols[i].PK < cols[j].PK })
		for _, c := range cols {
			facts[columnFact(column{Table: tb.Name, Name: c.Name, Type: c.Type, NotNull: c.NotNull, PK: c.PK > 0, Default: c.DfltValue})] = true
			if c.PK > 0 {
				pk = append(pk, c.Name)
			}
		}
		if len(pk) > 0 {
			facts[fmt.Sprintf("primary key %s (%s)", tb.Name, strings.Join(pk, ", "))] = true
		}
		var idxs []struct {
			Name    string
			Unique  bool
			Origin  string
			Partial bool
		}
		if err := g.Raw(fmt.Sprintf("PRAGMA index_list(%q)", tb.Name)).Scan(&idxs).Error; err != nil {
			t.Fatal(err)
		}
		for _, ix := range idxs {
			var keys []struct {
				Seqno int
				Name  *string
				Desc  bool
				Key   bool
			}
			if err := g.Raw(fmt.Sprintf("PRAGMA index_xinfo(%q)", ix.Name)).Scan(&keys).Error; err != nil {
				t.Fatal(err)
			}
			var cols []string
			for _, k := range keys {
				if !k.Key {
					continue
				}
				c := "<expr>"
				if k.Name != nil {
					c = *k.Name
				}
				if k.Desc {
					c += " desc"
				}
				cols = append(cols, c)
			}
			switch ix.Origin {
			case "pk":
				// the primary key, reported above
			case "u":
				facts[fmt.Sprintf("unique %s (%s)", tb.Name, strings.Join(cols, ", "))] = true
			default:
				var sql string
				if err := g.Raw(`SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?`, ix.Name).Scan(&sql).Error; err != nil {
					t.Fatal(err)
				}
				pred := ""
				if i := strings.Index(strings.ToUpper(sql), " WHERE "); i >= 0 {
					pred = sql[i+len(" WHERE "):]
				}
				facts[indexFact(tb.Name, ix.Name, ix.Unique, cols, pred)] = true
			}
		}
		var fks []struct {
			ID       int
			Seq      int
			Table    string
			From     string
			To       *string
			OnDelete string `gorm:"column:on_delete"`
		}
		if err := g.Raw(fmt.Sprintf("PRAGMA foreign_key_list(%q)", tb.Name)).Scan(&fks).Error; err != nil {
			t.Fatal(err)
		}
		byID := map[int][]string{}
		for _, fk := range fks {
			to := "<pk>"
			if fk.To != nil {
				to = *fk.To
			}
			byID[fk.ID] = append(byID[fk.ID], fmt.Sprintf("%s→%s.%s on delete %s", fk.From, fk.Table, to, strings.ToLower(fk.OnDelete)))
		}
		for _, parts := range byID {
			facts[fmt.Sprintf("foreign key %s %s", tb.Name, strings.Join(parts, ", "))] = true
		}
	}
	var triggers []struct{ Name, TblName, SQL string }
	if err := g.Raw(`SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'trigger'`).Scan(&triggers).Error; err != nil {
		t.Fatal(err)
	}
	for _, tr := range triggers {
		head := strings.ToUpper(tr.SQL)
		if i := strings.Index(head, " ON "); i >= 0 {
			head = head[:i]
		}
		for _, ev := range []string{"INSERT", "UPDATE", "DELETE"} {
			if strings.Contains(head, ev) {
				facts[fmt.Sprintf("trigger on %s %s", tr.TblName, strings.ToLower(ev))] = true
			}
		}
	}
	var views []string
	if err := g.Raw(`SELECT name FROM sqlite_master WHERE type = 'view' ORDER BY name`).Scan(&views).Error; err != nil {
		t.Fatal(err)
	}
	for _, v := range views {
		facts["view "+v] = true
		var cols []struct {
			Cid  int
			Name string
		}
		if err := g.Raw(fmt.Sprintf("PRAGMA table_info(%q)", v)).Scan(&cols).Error; err != nil {
			t.Fatal(err)
		}
		for _, c := range cols {
			facts[viewColumnFact(v, c.Cid, c.Name)] = true
		}
	}
	return facts
}

func indexFact(table, name string, unique bool, cols []string, pred string) string {
	u := ""
	if unique {
		u = "unique "
	}
	f := fmt.Sprintf("%sindex %s on %s (%s)", u, name, table, strings.Join(cols, ", "))
	if p := normPred(pred); p != "" {
		f += " where " + p
	}
	return f
}

func inspectPostgres(t *testing.T, d *db.DB) map[string]bool {
	t.Helper()
	g := d.Gorm
	facts := map[string]bool{}
	var tables []string
	if err := g.Raw(`SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'`).Scan(&tables).Error; err != nil {
		t.Fatal(err)
	}
	var parts []string
	if err := g.Raw(`SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = current_schema() AND c.relispartition`).Scan(&parts).Error; err != nil {
		t.Fatal(err)
	}
	isPart := map[string]bool{}
	for _, p := range parts {
		isPart[p] = true
	}
	var keys []struct{ Table, Cols string }
	if err := g.Raw(`SELECT c.relname AS table, (SELECT string_agg(a.attname, ',') FROM unnest(p.partattrs) AS u(att)
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = u.att) AS cols
FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = current_schema()`).Scan(&keys).Error; err != nil {
		t.Fatal(err)
	}
	partKey := map[string][]string{}
	for _, k := range keys {
		partKey[k.Table] = strings.Split(k.Cols, ",")
	}
	// withoutPartKey drops a partitioned table's partition key from its
	// primary or unique key's columns.
	withoutPartKey := func(table, cols string) string {
		var out []string
		for _, c := range strings.Split(cols, ", ") {
			if !slices.Contains(partKey[table], c) {
				out = append(out, c)
			}
		}
		return strings.Join(out, ", ")
	}
	for _, tb := range tables {
		if !isPart[tb] {
			facts["table "+tb] = true
		}
	}
	var cols []struct {
		TableName, ColumnName, DataType, IsNullable string
		ColumnDefault                               *string
	}
	if err := g.Raw(`SELECT c.table_name, c.column_name, c.data_type, c.is_nullable, c.column_default FROM information_schema.columns c
JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name AND t.table_type = 'BASE TABLE'
WHERE c.table_schema = current_schema()`).Scan(&cols).Error; err != nil {
		t.Fatal(err)
	}
	for _, c := range cols {
		if isPart[c.TableName] {
			continue
		}
		facts[columnFact(column{Table: c.TableName, Name: c.ColumnName, Type: c.DataType, NotNull: c.IsNullable == "NO", Default: c.ColumnDefault})] = true
	}
	var idxs []struct {
		Index, Table string
		Unique       bool `gorm:"column:indisunique"`
		Primary      bool `gorm:"column:indisprimary"`
		Constraint   bool
		Pred         string
		Cols         string
	}
	if err := g.Raw(`SELECT c.relname AS index, t.relname AS table, ix.indisunique, ix.indisprimary,
  EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = ix.indexrelid AND k.contype IN ('u', 'p')) AS constraint,
  COALESCE(pg_get_expr(ix.indpred, ix.indrelid), '') AS pred,
  (SELECT string_agg(pg_get_indexdef(ix.indexrelid, k, true) ||
     CASE WHEN ix.indoption[k-1] & 1 = 1 THEN ' desc' ELSE '' END, ', ' ORDER BY k)
   FROM generate_series(1, ix.indnkeyatts) AS k) AS cols
FROM pg_index ix
JOIN pg_class c ON c.oid = ix.indexrelid
JOIN pg_class t ON t.oid = ix.indrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
WHERE n.nspname = current_schema()`).Scan(&idxs).Error; err != nil {
		t.Fatal(err)
	}
	for _, ix := range idxs {
		if isPart[ix.Table] {
			continue
		}
		switch {
		case ix.Primary:
			facts[fmt.Sprintf("primary key %s (%s)", ix.Table, withoutPartKey(ix.Table, ix.Cols))] = true
		case ix.Constraint:
			facts[fmt.Sprintf("unique %s (%s)", ix.Table, withoutPartKey(ix.Table, ix.Cols))] = true
		default:
			cols := strings.Split(ix.Cols, ", ")
			for i, c := range cols {
				// An expression key (lower(email) COLLATE "C"): SQLite's
				// PRAGMA reports only that it is one.
				if strings.Contains(c, "(") {
					cols[i] = "<expr>" + strings.TrimPrefix(c[strings.LastIndexByte(c, ')')+1:], " COLLATE \"C\"")
				}
			}
			facts[indexFact(ix.Table, ix.Index, ix.Unique, cols, ix.Pred)] = true
		}
	}
	var fks []struct {
		Table, Cols, RefTable, RefCols, OnDelete string
	}
	if err := g.Raw(`SELECT t.relname AS table, r.relname AS ref_table,
  (SELECT string_agg(a.attname, ',' ORDER BY u.i) FROM unnest(k.conkey) WITH ORDINALITY AS u(att, i)
     JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.att) AS cols,
  (SELECT string_agg(a.attname, ',' ORDER BY u.i) FROM unnest(k.confkey) WITH ORDINALITY AS u(att, i)
     JOIN pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.att) AS ref_cols,
  CASE k.confdeltype WHEN 'a' THEN 'no action' WHEN 'r' THEN 'restrict' WHEN 'c' THEN 'cascade'
    WHEN 'n' THEN 'set null' WHEN 'd' THEN 'set default' END AS on_delete
FROM pg_constraint k
JOIN pg_class t ON t.oid = k.conrelid
JOIN pg_class r ON r.oid = k.confrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
WHERE k.contype = 'f' AND n.nspname = current_schema()`).Scan(&fks).Error; err != nil {
		t.Fatal(err)
	}
	for _, fk := range fks {
		from, to := strings.Split(fk.Cols, ","), strings.Split(fk.RefCols, ",")
		parts := make([]string, len(from))
		for i := range from {
			parts[i] = fmt.Sprintf("%s→%s.%s on delete %s", from[i], fk.RefTable, to[i], fk.OnDelete)
		}
		facts[fmt.Sprintf("foreign key %s %s", fk.Table, strings.Join(parts, ", "))] = true
	}
	var checks []struct {
		Table string
		N     int
	}
	if err := g.Raw(`SELECT t.relname AS table, COUNT(k.oid) AS n FROM pg_class t
JOIN pg_namespace n ON n.oid = t.relnamespace
LEFT JOIN pg_constraint k ON k.conrelid = t.oid AND k.contype = 'c'
WHERE n.nspname = current_schema() AND t.relkind IN ('r', 'p') AND NOT t.relispartition GROUP BY t.relname`).Scan(&checks).Error; err != nil {
		t.Fatal(err)
	}
	for _, c := range checks {
		facts[fmt.Sprintf("checks %s %d", c.Table, c.N)] = true
	}
	var triggers []struct{ EventObjectTable, EventManipulation string }
	if err := g.Raw(`SELECT DISTINCT event_object_table, event_manipulation FROM information_schema.triggers
WHERE trigger_schema = current_schema()`).Scan(&triggers).Error; err != nil {
		t.Fatal(err)
	}
	for _, tr := range triggers {
		facts[fmt.Sprintf("trigger on %s %s", tr.EventObjectTable, strings.ToLower(tr.EventManipulation))] = true
	}
	var viewCols []struct {
		TableName, ColumnName string
		OrdinalPosition       int
	}
	if err := g.Raw(`SELECT c.table_name, c.column_name, c.ordinal_position FROM information_schema.columns c
JOIN information_schema.views v ON v.table_schema = c.table_schema AND v.table_name = c.table_name
WHERE c.table_schema = current_schema()`).Scan(&viewCols).Error; err != nil {
		t.Fatal(err)
	}
	for _, c := range viewCols {
		facts["view "+c.TableName] = true
		facts[viewColumnFact(c.TableName, c.OrdinalPosition-1, c.ColumnName)] = true
	}
	return facts
}

// viewColumnFact names a view's column by its position. Types are not
// compared: SQLite gives a view's computed columns none.
func viewColumnFact(view string, pos int, name string) string {
	return fmt.Sprintf("view column %s #%d %s", view, pos, name)
}
