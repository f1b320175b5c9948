package faults

import (
	"net"
	"net/url"
	"sync"
	"testing"
)

// stallProxy is a TCP proxy in front of PostgreSQL that can stall: while
// stalled it accepts connections but moves no byte in either direction, as
// a network partition that drops packets does (dbtest.Proxy, by contrast,
// refuses and resets: the database is gone). Resuming lets everything
// through again, nothing lost.
type stallProxy struct {
	target string
	ln     net.Listener

	mu      sync.Mutex
	stalled bool
	resume  chan struct{} // closed when the stall ends
}

// newStallProxy starts a proxy to the host of pgURL and returns it with
// the URL to use instead.
func newStallProxy(t *testing.T, pgURL string) (*stallProxy, string) {
	t.Helper()
	u, err := url.Parse(pgURL)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &stallProxy{target: u.Host, ln: ln, resume: make(chan struct{})}
	close(p.resume)
	go p.accept()
	t.Cleanup(func() { _ = ln.Close(); p.set(false) })
	u.Host = ln.Addr().String()
	return p, u.String()
}

// set stalls (true) or resumes (false) the traffic.
func (p *stallProxy) set(stall bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case stall && !p.stalled:
		p.resume = make(chan struct{})
	case !stall && p.stalled:
		close(p.resume)
	}
	p.stalled = stall
}

// gate blocks while the proxy is stalled.
func (p *stallProxy) gate() {
	p.mu.Lock()
	ch := p.resume
	p.mu.Unlock()
	<-ch
}

func (p *stallProxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		go func() {
			p.gate()
			up, err := net.Dial("tcp", p.target)
			if err != nil {
				_ = c.Close()
				return
			}
			go p.pipe(up, c)
			go p.pipe(c, up)
		}()
	}
}

func (p *stallProxy) pipe(dst, src net.Conn) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.gate() // bytes read during a stall are held until it ends
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
