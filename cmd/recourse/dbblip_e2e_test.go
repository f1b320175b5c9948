package main

import (
	"io"
	"net/http"
	"sync"
	"testing"

	"github.com/recourse-hq/recourse/internal/dbtest"
)

// Right after a PostgreSQL outage every pooled connection is severed; 50
// concurrent authenticated reads all answer 200 (the token check and the
// read are retried once on a fresh connection). SQLite has no such pool;
// the same load is checked there too.
func TestAPIReadsSurviveDatabaseBlip(t *testing.T) {
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			env := map[string]string{"RECOURSE_SQLITE_PATH": dbtest.NewSQLitePath(t)}
			var proxy *dbtest.Proxy
			if dialect == "postgres" {
				var url string
				proxy, url = dbtest.NewProxy(t, dbtest.NewPostgresURL(t))
				env["DATABASE_URL"] = url
			}
			in := boot(t, env)
			admin := in.token("admin")
			paths := []string{"/api/v1/users", "/api/v1/tokens", "/api/v1/webhook-events", "/api/v1/audit", "/api/v1/cases"}
			burst := func(label string) {
				t.Helper()
				var wg sync.WaitGroup
				codes := make([]int, 50)
				bodies := make([]string, 50)
				for i := range 50 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						path := paths[i%len(paths)]
						req, _ := http.NewRequest("GET", in.url+path, nil)
						req.Header.Set("Authorization", "Bearer "+admin)
						resp, err := in.api.Do(req)
						if err != nil {
							bodies[i] = err.Error()
							return
						}
						b, _ := io.ReadAll(resp.Body)
						resp.Body.Close()
						codes[i], bodies[i] = resp.StatusCode, string(b)
					}()
				}
				wg.Wait()
				for i, c := range codes {
					if c != 200 {
						t.Fatalf("%s: request %d answered %d %s", label, i, c, bodies[i])
					}
				}
			}
			burst("before")
			if proxy != nil {
				proxy.Stop()
				proxy.Start()
			}
			burst("right after the outage")
			burst("after")
		})
	}
}
