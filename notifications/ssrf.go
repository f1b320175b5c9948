package notifications

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"syscall"
	"time"
)

// ErrPrivateAddress is a destination that resolves to an address Recourse
// must not post to without allow_private.
var ErrPrivateAddress = errors.New("resolves to a private, loopback, link-local or unspecified address (set allow_private: true to allow it)")

// cgnat is the shared address space (RFC 6598), private in all but name.
var cgnat = &net.IPNet{IP: net.IPv4(100, 64, 0, 0), Mask: net.CIDRMask(10, 32)}

// blockedIP reports whether ip is private (10/8, 172.16/12, 192.168/16,
// 100.64/10, fc00::/7), loopback, link-local (169.254/16 — cloud metadata —
// and fe80::/10), multicast or unspecified (0.0.0.0/8, ::).
func blockedIP(ip net.IP) bool {
	if ip4 := ip.To4(); ip4 != nil {
		ip = ip4
		if ip4[0] == 0 || cgnat.Contains(ip4) {
			return true
		}
	}
	return ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsInterfaceLocalMulticast() || ip.IsMulticast() || ip.IsUnspecified()
}

// CheckURL refuses a destination URL that is not https, or whose host is
// or resolves (through r) to a blocked address — unless allowPrivate, which
// allows http and any address. The dialer checks again at delivery time
// (DNS changes).
func CheckURL(ctx context.Context, r Resolver, raw string, allowPrivate bool) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("url %q is not an absolute URL", redactURL(raw))
	}
	if u.User != nil {
		return fmt.Errorf("url must not carry user info")
	}
	if allowPrivate {
		if u.Scheme != "https" && u.Scheme != "http" {
			return fmt.Errorf("url must be https (or http with allow_private), not %s", u.Scheme)
		}
		return nil
	}
	if u.Scheme != "https" {
		return fmt.Errorf("url must be https, not %s", u.Scheme)
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); ip != nil {
		if blockedIP(ip) {
			return fmt.Errorf("url host %s %w", host, ErrPrivateAddress)
		}
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	addrs, err := r.LookupIPAddr(ctx, host)
	if err != nil {
		return fmt.Errorf("url host %s does not resolve: %w", host, err)
	}
	for _, a := range addrs {
		if blockedIP(a.IP) {
			return fmt.Errorf("url host %s (%s) %w", host, a.IP, ErrPrivateAddress)
		}
	}
	return nil
}

// redactURL keeps scheme and host: the path of a webhook URL is often its
// credential.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "…"
	}
	return u.Scheme + "://" + u.Host + "/…"
}

// guardedControl refuses to connect to a blocked address: it runs on the
// address actually dialled, after resolution, so neither DNS rebinding nor
// a redirect can reach one.
func guardedControl(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); ip == nil || blockedIP(ip) {
		return fmt.Errorf("refusing to connect to %s: %w", host, ErrPrivateAddress)
	}
	return nil
}

// newClient returns the HTTP client for deliveries: timeout per call,
// no redirects followed (a 3xx is a failure), and, unless allowPrivate,
// the guarded dialer.
func newClient(timeout time.Duration, allowPrivate bool) *http.Client {
	dialer := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	if !allowPrivate {
		dialer.Control = guardedControl
	}
	tr := &http.Transport{
		Proxy:                 nil, // a proxy would dial for us, past the guard
		DialContext:           dialer.DialContext,
		TLSHandshakeTimeout:   timeout,
		ResponseHeaderTimeout: timeout,
		MaxIdleConnsPerHost:   2,
		IdleConnTimeout:       90 * time.Second,
	}
	return &http.Client{Transport: tr, Timeout: timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}
