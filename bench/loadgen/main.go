// A fixed-rate, never-retrying HTTP/1.1 load client for the router benchmarks.
//
// Each of -conns keep-alive connections sends -rate requests/s on its own schedule (phased so
// the connections do not fire together); a late request goes at once and the schedule goes on
// from there, no catch-up burst. A failed request (a socket error or a closed connection) is
// recorded and never retried: the next scheduled request opens a new connection. Go's own HTTP
// client would retry an idempotent request on a reused connection that the server closed, which
// hides exactly the failures a switch causes, so requests are written and read by hand.
//
// Why Go and not the Python client of tests/component: 20 Python threads share one interpreter
// lock, and their scheduling shows up as milliseconds of latency that no router adds.
//
// Output, after the run: `T0 <ns>` (CLOCK_MONOTONIC at the start, the clock Python's
// time.monotonic() reads), then one line per request:
// `S <stream> <start ns> <end ns> <status|-> <color|-> <new 0|1> <error|->`.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

type sample struct {
	stream     string
	start, end time.Duration
	status     int
	color      string
	fresh      bool
	err        string
}

func monotonicNow() int64 {
	var ts syscall.Timespec
	const clockMonotonic = 1
	if _, _, errno := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockMonotonic, uintptr(unsafe.Pointer(&ts)), 0); errno != 0 {
		fmt.Fprintln(os.Stderr, "clock_gettime:", errno)
		os.Exit(2)
	}
	return ts.Nano()
}

type connection struct {
	addr, path, host string
	timeout          time.Duration
	conn             net.Conn
	reader           *bufio.Reader
}

// one sends a request and reads the whole response; it reports whether the connection was new.
func (c *connection) one() (status int, color string, fresh bool, err error) {
	if c.conn == nil {
		conn, dialErr := net.DialTimeout("tcp", c.addr, c.timeout)
		if dialErr != nil {
			return 0, "", true, dialErr
		}
		conn.(*net.TCPConn).SetNoDelay(true)
		c.conn, c.reader, fresh = conn, bufio.NewReader(conn), true
	}
	c.conn.SetDeadline(time.Now().Add(c.timeout))
	if _, err = fmt.Fprintf(c.conn, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", c.path, c.host); err != nil {
		c.close()
		return 0, "", fresh, err
	}
	response, err := http.ReadResponse(c.reader, nil)
	if err != nil {
		c.close()
		return 0, "", fresh, err
	}
	_, err = io.Copy(io.Discard, response.Body)
	response.Body.Close()
	if err != nil || response.Close {
		c.close()
	}
	return response.StatusCode, response.Header.Get("X-Upstream-Color"), fresh, err
}

func (c *connection) close() {
	if c.conn != nil {
		c.conn.Close()
		c.conn, c.reader = nil, nil
	}
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "host:port (loopback only)")
	path := flag.String("path", "/", "request path")
	host := flag.String("host", "bench.local", "Host header")
	conns := flag.Int("conns", 20, "keep-alive connections")
	rate := flag.Float64("rate", 20, "requests per second per connection")
	duration := flag.Duration("duration", 12*time.Second, "how long to send")
	timeout := flag.Duration("timeout", 30*time.Second, "per request")
	flag.Parse()
	if h, _, err := net.SplitHostPort(*addr); err != nil || !net.ParseIP(h).IsLoopback() {
		fmt.Fprintln(os.Stderr, "loadgen: -addr must be a loopback host:port, got", *addr)
		os.Exit(2)
	}
	if *conns < 1 || *rate <= 0 || *duration <= 0 {
		fmt.Fprintln(os.Stderr, "loadgen: -conns, -rate and -duration must be positive")
		os.Exit(2)
	}

	t0mono, t0 := monotonicNow(), time.Now()
	interval := time.Duration(float64(time.Second) / *rate)
	var mu sync.Mutex
	var samples []sample
	var wg sync.WaitGroup
	for i := 0; i < *conns; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c := &connection{addr: *addr, path: *path, host: *host, timeout: *timeout}
			defer c.close()
			stream := fmt.Sprintf("ka%d", i)
			next := time.Duration(i) * interval / time.Duration(*conns)
			var mine []sample
			for next < *duration {
				if wait := next - time.Since(t0); wait > 0 {
					time.Sleep(wait)
				}
				start := time.Since(t0)
				status, color, fresh, err := c.one()
				s := sample{stream: stream, start: start, end: time.Since(t0), status: status, color: color, fresh: fresh}
				if err != nil {
					s.err = strings.ReplaceAll(fmt.Sprintf("%T: %v", err, err), " ", "_")
				}
				mine = append(mine, s)
				next += interval
				if now := time.Since(t0); next < now {
					next = now
				}
			}
			mu.Lock()
			samples = append(samples, mine...)
			mu.Unlock()
		}(i)
	}
	wg.Wait()

	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	fmt.Fprintf(out, "T0 %d\n", t0mono)
	for _, s := range samples {
		status, color, err, fresh := "-", "-", "-", 0
		if s.status != 0 {
			status = fmt.Sprint(s.status)
		}
		if s.color != "" {
			color = s.color
		}
		if s.err != "" {
			err = s.err
		}
		if s.fresh {
			fresh = 1
		}
		fmt.Fprintf(out, "S %s %d %d %s %s %d %s\n", s.stream, int64(s.start), int64(s.end), status, color, fresh, err)
	}
}
