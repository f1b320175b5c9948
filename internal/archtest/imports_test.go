// Package archtest holds tests of the repository's shape rather than of any
// one package: the import graph against the allowed dependencies written in
// docs/architecture.md, and the dialect seam (no domain code branches on the
// database). It has no non-test code.
package archtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// edge is one import: From imports To (module-relative package paths).
type edge struct{ From, To string }

// knownViolations are imports the code has today that the allowed graph
// forbids, each with why it is tolerated and who removes it. The test fails
// when one of them disappears, so the entry cannot outlive the import.
var knownViolations = map[edge]string{}

// moduleRoot returns the module path and its directory.
func moduleRoot(t *testing.T) (string, string) {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Path}}|{{.Dir}}").Output()
	if err != nil {
		t.Fatalf("go list -m: %v", err)
	}
	path, dir, ok := strings.Cut(strings.TrimSpace(string(out)), "|")
	if !ok {
		t.Fatalf("go list -m: %q", out)
	}
	return path, dir
}

// importGraph returns every package of the module (relative path, "." for
// the root) with the module-internal packages its non-test files import.
func importGraph(t *testing.T, module, dir string) map[string][]string {
	t.Helper()
	cmd := exec.Command("go", "list", "-json=ImportPath,Imports", "./...")
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list ./...: %v\n%s", err, stderr.String())
	}
	rel := func(p string) (string, bool) {
		if p == module {
			return ".", true
		}
		r, ok := strings.CutPrefix(p, module+"/")
		return r, ok
	}
	graph := map[string][]string{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p struct {
			ImportPath string
			Imports    []string
		}
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("decode go list: %v", err)
		}
		from, ok := rel(p.ImportPath)
		if !ok {
			continue
		}
		graph[from] = []string{}
		for _, imp := range p.Imports {
			if to, ok := rel(imp); ok {
				graph[from] = append(graph[from], to)
			}
		}
	}
	return graph
}

// parseAllowed reads the "## Allowed dependencies" table of an architecture
// document: package → what it may import. Cells may wrap names in
// backticks; "may import" is a comma-separated list of module-relative
// packages, `x/*` for anything under x/, `*` for anything, and "—" or
// nothing for no package at all.
func parseAllowed(doc string) (map[string][]string, error) {
	const heading = "## Allowed dependencies"
	i := strings.Index(doc, "\n"+heading+"\n")
	if i < 0 {
		return nil, fmt.Errorf("no %q section", heading)
	}
	section := doc[i+len(heading)+2:]
	if j := strings.Index(section, "\n## "); j >= 0 {
		section = section[:j]
	}
	clean := func(s string) string { return strings.Trim(strings.TrimSpace(s), "`") }
	rows := map[string][]string{}
	header := false
	for _, line := range strings.Split(section, "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "|") {
			if header && len(rows) > 0 {
				break // the table ended
			}
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		if len(cells) != 2 {
			return nil, fmt.Errorf("table row %q: want | package | may import |", line)
		}
		pkg, may := clean(cells[0]), strings.TrimSpace(cells[1])
		switch {
		case !header:
			if pkg != "package" || clean(may) != "may import" {
				return nil, fmt.Errorf("table header %q: want | package | may import |", line)
			}
			header = true
			continue
		case strings.Trim(pkg, "-: ") == "":
			continue // the separator row
		}
		if _, dup := rows[pkg]; dup {
			return nil, fmt.Errorf("package %s is listed twice", pkg)
		}
		allowed := []string{}
		for _, a := range strings.Split(may, ",") {
			if a = clean(a); a != "" && a != "—" && a != "-" {
				allowed = append(allowed, a)
			}
		}
		rows[pkg] = allowed
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("the %q section has no | package | may import | table", heading)
	}
	return rows, nil
}

// matches reports whether pattern (a package, x/* or *) covers pkg.
func matches(pattern, pkg string) bool {
	if pattern == "*" || pattern == pkg {
		return true
	}
	if prefix, ok := strings.CutSuffix(pattern, "/*"); ok {
		return strings.HasPrefix(pkg, prefix+"/")
	}
	return false
}

// ruleFor returns the row that governs pkg: its own row, else the longest
// wildcard row that covers it.
func ruleFor(rows map[string][]string, pkg string) (string, bool) {
	if _, ok := rows[pkg]; ok {
		return pkg, true
	}
	best := ""
	for p := range rows {
		if strings.HasSuffix(p, "/*") && matches(p, pkg) && len(p) > len(best) {
			best = p
		}
	}
	return best, best != ""
}

// checkGraph returns every problem of graph against rows, sorted: a package
// no row governs, an import its row does not allow (unless known), a known
// violation that no longer occurs, and a row naming no package.
func checkGraph(graph map[string][]string, rows map[string][]string, known map[edge]string) []string {
	var problems []string
	seen := map[edge]bool{}
	used := map[string]bool{}
	for from, imps := range graph {
		row, ok := ruleFor(rows, from)
		if !ok {
			problems = append(problems, fmt.Sprintf("package %s is not in the Allowed dependencies table of docs/architecture.md", from))
			continue
		}
		used[row] = true
		for _, to := range imps {
			allowed := false
			for _, pat := range rows[row] {
				allowed = allowed || matches(pat, to)
			}
			if allowed {
				continue
			}
			e := edge{from, to}
			if _, ok := known[e]; ok {
				seen[e] = true
				continue
			}
			problems = append(problems, fmt.Sprintf("%s imports %s, which its row (%s) does not allow", from, to, row))
		}
	}
	for e, why := range known {
		if !seen[e] {
			problems = append(problems, fmt.Sprintf("known violation %s → %s (%s) no longer occurs: delete it from knownViolations", e.From, e.To, why))
		}
	}
	for row := range rows {
		if !used[row] {
			problems = append(problems, fmt.Sprintf("row %s of the Allowed dependencies table names no package", row))
		}
	}
	sort.Strings(problems)
	return problems
}

// TestImportGraph checks every package's imports against the allowed
// dependencies in docs/architecture.md.
func TestImportGraph(t *testing.T) {
	module, dir := moduleRoot(t)
	doc, err := os.ReadFile(filepath.Join(dir, "docs", "architecture.md"))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := parseAllowed(string(doc))
	if err != nil {
		t.Fatalf("docs/architecture.md: %v", err)
	}
	graph := importGraph(t, module, dir)
	if len(graph) < 10 {
		t.Fatalf("go list found only %d packages: %v", len(graph), graph)
	}
	for _, p := range checkGraph(graph, rows, knownViolations) {
		t.Error(p)
	}
}

// TestCheckGraph shows the checker catches what it should, on a made-up
// graph and table.
func TestCheckGraph(t *testing.T) {
	t.Parallel()
	const doc = "# A\n\n## Allowed dependencies\n\nText.\n\n| package | may import |\n| --- | --- |\n" +
		"| `cmd/x` | * |\n| `web` | `core`, internal/* |\n| `core` | internal/* |\n| `internal/dbtest` | internal/*, migrations |\n" +
		"| `migrations` | internal/db |\n| `internal/*` | internal/* |\n| `leaf` | — |\n\n## Next\n\n| package | may import |\n"
	rows, err := parseAllowed(doc)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 7 || len(rows["leaf"]) != 0 || len(rows["web"]) != 2 {
		t.Fatalf("rows %v", rows)
	}
	good := map[string][]string{
		"cmd/x": {"web", "core", "internal/db"}, "web": {"core", "internal/httpx"}, "core": {"internal/db"},
		"internal/db": {}, "internal/httpx": {"internal/db"}, "internal/dbtest": {"internal/db", "migrations"},
		"migrations": {"internal/db"}, "leaf": {},
	}
	if p := checkGraph(good, rows, nil); len(p) != 0 {
		t.Fatalf("a conforming graph has problems: %v", p)
	}
	clone := func() map[string][]string {
		g := map[string][]string{}
		for k, v := range good {
			g[k] = append([]string(nil), v...)
		}
		return g
	}
	for name, tc := range map[string]struct {
		change func(g map[string][]string)
		known  map[edge]string
		want   string
	}{
		"package not in the table": {func(g map[string][]string) { g["newpkg"] = nil }, nil, "package newpkg is not in the Allowed dependencies table"},
		"forbidden import":         {func(g map[string][]string) { g["core"] = append(g["core"], "web") }, nil, "core imports web"},
		"internal imports domain":  {func(g map[string][]string) { g["internal/httpx"] = append(g["internal/httpx"], "core") }, nil, "internal/httpx imports core"},
		"leaf imports anything":    {func(g map[string][]string) { g["leaf"] = []string{"internal/db"} }, nil, "leaf imports internal/db"},
		"stale known violation":    {func(map[string][]string) {}, map[edge]string{{"web", "cmd/x"}: "x"}, "no longer occurs"},
		"row naming nothing":       {func(g map[string][]string) { delete(g, "leaf") }, nil, "row leaf of the Allowed dependencies table names no package"},
	} {
		g := clone()
		tc.change(g)
		p := checkGraph(g, rows, tc.known)
		if len(p) != 1 || !strings.Contains(p[0], tc.want) {
			t.Errorf("%s: problems %v, want one containing %q", name, p, tc.want)
		}
	}
	// A known violation that occurs is tolerated.
	g := clone()
	g["core"] = append(g["core"], "web")
	if p := checkGraph(g, rows, map[edge]string{{"core", "web"}: "being removed"}); len(p) != 0 {
		t.Fatalf("known violation reported: %v", p)
	}
	for _, bad := range []string{"# no section", "## Allowed dependencies\n\nnone\n", "## Allowed dependencies\n\n| pkg | deps |\n| --- | --- |\n| a | b |\n"} {
		if _, err := parseAllowed("\n" + bad); err == nil {
			t.Errorf("parseAllowed accepted %q", bad)
		}
	}
}
