// Command lbproxy is a minimal L4 TCP load balancer for load tests: it accepts on one address and hands whole connections to the backends in turn.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to accept connections on")
	backends := flag.String("backends", "", "comma-separated backend addresses (required)")
	dialTimeout := flag.Duration("dial-timeout", 5*time.Second, "timeout for connecting to a backend")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("lbproxy: ")

	var targets []string
	for b := range strings.SplitSeq(*backends, ",") {
		if b = strings.TrimSpace(b); b != "" {
			targets = append(targets, b)
		}
	}
	if len(targets) == 0 {
		log.Fatal("--backends is required")
	}
	lis, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	p := &proxy{targets: targets, dialTimeout: *dialTimeout, conns: make([]atomic.Int64, len(targets))}
	// The bound address on stdout, so a caller that asked for port 0 learns it.
	fmt.Println(lis.Addr().String())

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-sigs
		_ = lis.Close()
	}()
	p.serve(lis)
	p.wg.Wait()
	for i, t := range targets {
		log.Printf("backend %s: %d connections", t, p.conns[i].Load())
	}
}

type proxy struct {
	targets     []string
	dialTimeout time.Duration
	next        atomic.Uint64
	conns       []atomic.Int64 // connections handed to each target
	wg          sync.WaitGroup
}

// serve accepts until lis is closed.
func (p *proxy) serve(lis net.Listener) {
	for {
		c, err := lis.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			log.Printf("accept: %v", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		i := int((p.next.Add(1) - 1) % uint64(len(p.targets)))
		p.conns[i].Add(1)
		p.wg.Go(func() { p.pipe(c, p.targets[i]) })
	}
}

// pipe connects client to target and copies both ways until both sides
// have finished, passing half-closes on.
func (p *proxy) pipe(client net.Conn, target string) {
	defer func() { _ = client.Close() }()
	backend, err := net.DialTimeout("tcp", target, p.dialTimeout)
	if err != nil {
		log.Printf("dial %s: %v", target, err)
		return
	}
	defer func() { _ = backend.Close() }()
	var wg sync.WaitGroup
	wg.Go(func() { copyHalf(backend, client) })
	copyHalf(client, backend)
	wg.Wait()
}

// copyHalf copies src to dst, then closes dst's write side (or all of dst
// when it cannot half-close) so the peer sees the end of the stream.
func copyHalf(dst, src net.Conn) {
	_, _ = io.Copy(dst, src)
	if tc, ok := dst.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
		return
	}
	_ = dst.Close()
}
