package archtest

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// dialectBranch matches code that decides by database dialect, or spells a
// PostgreSQL-only lock itself. Built from pieces so this file does not match.
var dialectBranch = regexp.MustCompile(`Dialect\s*[!=]` + `=|[!=]=\s*db\.(Postgres|SQLite)\b|pg_advisory` + `_`)

// seamDirs may speak the dialects: internal/db is the seam, migrations
// hold SQL per dialect.
var seamDirs = []string{"internal/db", "migrations"}

// TestOneDialectSeam: outside internal/db and migrations, no Go file (tests
// included) branches on the database dialect or takes advisory locks by
// hand; they call the seam (db.Dialect.ForUpdate, ForUpdateSkipLocked,
// SkipLockedSQL, AdvisoryXactLock, DB.InsertReturning).
func TestOneDialectSeam(t *testing.T) {
	_, root := moduleRoot(t)
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			for _, s := range seamDirs {
				if rel == s {
					return filepath.SkipDir
				}
			}
			if strings.HasPrefix(d.Name(), ".") && rel != "." {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for i, line := range strings.Split(string(b), "\n") {
			if dialectBranch.MatchString(line) {
				t.Errorf("%s:%d branches on the database dialect; use the seam in internal/db: %s", rel, i+1, strings.TrimSpace(line))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
