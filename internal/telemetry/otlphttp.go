package telemetry

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"golang.org/x/net/http/httpguts"
	"google.golang.org/protobuf/proto"
)

// otlpHTTP is a span exporter that sends batches of spans to an OTLP/HTTP
// receiver as binary protobuf (OTLP 1.x, POST to /v1/traces). It encodes
// the provider's spans straight into a reused buffer: otlptracehttp
// builds each span's protobuf structs and marshals them by reflection,
// 12–13% of a gateway's CPU when every request is traced.
//
// It is configured by the variables otlptracehttp reads, the per-signal
// OTEL_EXPORTER_OTLP_TRACES_* ones over the general OTEL_EXPORTER_OTLP_*:
// ENDPOINT (default http://localhost:4318; /v1/traces is appended, while
// TRACES_ENDPOINT is used as it is), HEADERS (k=v pairs, comma-separated,
// values URL-encoded; empty entries skipped), TIMEOUT (milliseconds a
// batch's export may take, tries included, default 10000), COMPRESSION
// (gzip or none, the default), CERTIFICATE (a PEM file of the receiver's
// CAs), CLIENT_CERTIFICATE and CLIENT_KEY (PEM files, for mTLS), INSECURE
// (true: plain HTTP to an https:// endpoint's host).
//
// A batch the receiver refuses with 429, 502, 503 or 504, or that cannot
// reach it (refused, reset), is sent again after the receiver's
// Retry-After, else after 1 s doubling, within the batch's TIMEOUT (the
// OTel specification's: the time one batch's export may take, tries
// included) and the batch processor's export context.
type otlpHTTP struct {
	url     string
	header  http.Header
	gzip    bool
	timeout time.Duration
	client  *http.Client

	stopCtx context.Context // ended by Shutdown: a batch being sent stops
	stop    context.CancelFunc
	mu      sync.Mutex // the provider exports one batch at a time; this guards it anyway
	enc     traceEncoder
	zbuf    bytes.Buffer
	zw      *gzip.Writer
}

// newOTLPHTTP builds the exporter from the variables getenv reads (files
// named by them are read with readFile).
func newOTLPHTTP(getenv func(string) string, readFile func(string) ([]byte, error)) (*otlpHTTP, error) {
	env := func(name string) (string, string) {
		if v := getenv("OTEL_EXPORTER_OTLP_TRACES_" + name); v != "" {
			return "OTEL_EXPORTER_OTLP_TRACES_" + name, v
		}
		return "OTEL_EXPORTER_OTLP_" + name, getenv("OTEL_EXPORTER_OTLP_" + name)
	}
	e := &otlpHTTP{header: http.Header{}, timeout: 10 * time.Second}
	e.stopCtx, e.stop = context.WithCancel(context.Background())

	target := "http://localhost:4318/v1/traces"
	if v := getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"); v != "" {
		u, err := endpointURL("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", v)
		if err != nil {
			return nil, err
		}
		if u.Path == "" {
			u.Path = "/"
		}
		target = u.String()
	} else if v := getenv("OTEL_EXPORTER_OTLP_ENDPOINT"); v != "" {
		u, err := endpointURL("OTEL_EXPORTER_OTLP_ENDPOINT", v)
		if err != nil {
			return nil, err
		}
		u.Path = path.Join(u.Path, "/v1/traces")
		target = u.String()
	}
	if name, v := env("INSECURE"); v != "" {
		insecure, err := strconv.ParseBool(v)
		if err != nil {
			return nil, fmt.Errorf("%s=%q: want true or false", name, v)
		}
		if insecure {
			target = strings.Replace(target, "https://", "http://", 1)
		}
	}
	e.url = target

	if name, v := env("HEADERS"); v != "" {
		for _, pair := range strings.Split(v, ",") {
			if strings.TrimSpace(pair) == "" {
				continue // "a=b," or "a=b, ,c=d"
			}
			k, val, ok := strings.Cut(pair, "=")
			k = strings.TrimSpace(k)
			if !ok || !httpguts.ValidHeaderFieldName(k) {
				return nil, fmt.Errorf("%s: %q is not a header: want name=value pairs separated by commas", name, pair)
			}
			decoded, err := url.PathUnescape(strings.TrimSpace(val))
			if err != nil || !httpguts.ValidHeaderFieldValue(decoded) {
				return nil, fmt.Errorf("%s: the value of %q is not a URL-encoded header value", name, k)
			}
			e.header.Set(k, decoded)
		}
	}
	if name, v := env("TIMEOUT"); v != "" {
		ms, err := strconv.Atoi(v)
		if err != nil || ms <= 0 {
			return nil, fmt.Errorf("%s=%q: want a positive number of milliseconds", name, v)
		}
		e.timeout = time.Duration(ms) * time.Millisecond
	}
	if name, v := env("COMPRESSION"); v != "" {
		switch strings.ToLower(v) {
		case "gzip":
			e.gzip = true
		case "none":
		default:
			return nil, fmt.Errorf("%s=%q: want gzip or none", name, v)
		}
	}

	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12}
	if name, v := env("CERTIFICATE"); v != "" {
		pem, err := readFile(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s: %s holds no PEM certificate", name, v)
		}
		tlsConf.RootCAs = pool
	}
	certName, certFile := env("CLIENT_CERTIFICATE")
	keyName, keyFile := env("CLIENT_KEY")
	if (certFile == "") != (keyFile == "") {
		return nil, fmt.Errorf("%s and %s go together: set both or neither", certName, keyName)
	}
	if certFile != "" {
		certPEM, err := readFile(certFile)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", certName, err)
		}
		keyPEM, err := readFile(keyFile)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", keyName, err)
		}
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, fmt.Errorf("%s and %s: %w", certName, keyName, err)
		}
		tlsConf.Certificates = []tls.Certificate{cert}
	}
	e.client = &http.Client{Transport: &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		TLSClientConfig:     tlsConf,
		MaxIdleConnsPerHost: 2,
		IdleConnTimeout:     90 * time.Second,
		ForceAttemptHTTP2:   true,
	}}
	return e, nil
}

// endpointURL parses an endpoint variable's URL: http or https, with a host.
func endpointURL(name, v string) (*url.URL, error) {
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%s=%q: want an http:// or https:// URL", name, v)
	}
	return u, nil
}

// export sends spans in one request, tried again as the type's comment
// says.
func (e *otlpHTTP) export(ctx context.Context, spans []*span) error {
	if len(spans) == 0 {
		return nil
	}
	if e.stopCtx.Err() != nil {
		return errors.New("OTLP/HTTP exporter: shut down")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	ctx, cancel := context.WithTimeoutCause(ctx, e.timeout, fmt.Errorf("the export's timeout of %s passed", e.timeout))
	defer cancel()
	defer context.AfterFunc(e.stopCtx, cancel)()
	body := e.enc.encode(spans)
	if e.gzip {
		e.zbuf.Reset()
		if e.zw == nil {
			e.zw = gzip.NewWriter(&e.zbuf)
		} else {
			e.zw.Reset(&e.zbuf)
		}
		if _, err := e.zw.Write(body); err != nil {
			return err
		}
		if err := e.zw.Close(); err != nil {
			return err
		}
		body = e.zbuf.Bytes()
	}
	wait := time.Second
	for {
		retryAfter, err := e.send(ctx, body, len(spans))
		if retryAfter < 0 {
			return err
		}
		if retryAfter == 0 {
			retryAfter = wait
			wait = min(2*wait, 30*time.Second)
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < retryAfter {
			return fmt.Errorf("%w: %d spans dropped (not tried again: the export's deadline would pass first)", err, len(spans))
		}
		t := time.NewTimer(retryAfter)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w: %d spans dropped (not tried again: %v)", err, len(spans), context.Cause(ctx))
		case <-t.C:
		}
	}
}

// sentBody is a request body over the encoder's buffer. The transport may
// still read a body after Do has returned (a receiver that answers before
// reading it all, a try cut short), and the buffer is the next batch's:
// close stops any read before the buffer is used again.
type sentBody struct {
	mu     sync.Mutex
	r      bytes.Reader
	closed bool
}

func (b *sentBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, errors.New("OTLP/HTTP export: the batch was sent or given up")
	}
	return b.r.Read(p)
}

func (b *sentBody) Close() error {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	return nil
}

// send is one try: it returns a negative retryAfter when it is done (err
// says whether it failed), else how long the receiver asks to be left
// alone (0 when it does not say).
func (e *otlpHTTP) send(ctx context.Context, data []byte, spans int) (retryAfter time.Duration, err error) {
	body := &sentBody{}
	body.r.Reset(data)
	defer body.Close()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.url, body)
	if err != nil {
		return -1, fmt.Errorf("OTLP/HTTP export to %s: %w", e.url, err)
	}
	req.ContentLength = int64(len(data))
	for k, v := range e.header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("User-Agent", "wasmesh")
	if e.gzip {
		req.Header.Set("Content-Encoding", "gzip")
	}
	resp, err := e.client.Do(req)
	if err != nil {
		err = fmt.Errorf("OTLP/HTTP export: %w", err)
		if ctx.Err() == nil && (errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
			errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)) {
			return 0, err // refused, reset, cut: the receiver may be back soon
		}
		return -1, fmt.Errorf("%w: %d spans dropped", err, spans)
	}
	defer resp.Body.Close()
	answer, readErr := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		if readErr != nil || len(answer) == 0 || strings.Contains(resp.Header.Get("Content-Type"), "json") {
			return -1, nil
		}
		var r coltrace.ExportTraceServiceResponse
		if proto.Unmarshal(answer, &r) == nil && r.GetPartialSuccess().GetRejectedSpans() > 0 {
			return -1, &partialError{rejected: r.GetPartialSuccess().GetRejectedSpans(), err: fmt.Errorf("OTLP/HTTP export to %s: the receiver rejected %d spans: %s",
				e.url, r.GetPartialSuccess().GetRejectedSpans(), r.GetPartialSuccess().GetErrorMessage())}
		}
		return -1, nil
	case resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode == http.StatusBadGateway,
		resp.StatusCode == http.StatusServiceUnavailable, resp.StatusCode == http.StatusGatewayTimeout:
		err := fmt.Errorf("OTLP/HTTP export to %s: %s", e.url, resp.Status)
		return retryAfterOf(resp.Header.Get("Retry-After")), err
	}
	return -1, fmt.Errorf("OTLP/HTTP export to %s: %s: %d spans dropped", e.url, resp.Status, spans)
}

// partialError is an export the receiver took but for rejected of its
// spans (OTLP's partial success): those alone failed.
type partialError struct {
	rejected int64
	err      error
}

func (e *partialError) Error() string { return e.err.Error() }

// retryAfterOf is how long a Retry-After field asks to wait, in seconds
// or until an HTTP date; 0 when it says neither.
func retryAfterOf(v string) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil {
		return time.Duration(max(s, 0)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}

// transient: export encodes the spans, and keeps nothing of them.
func (e *otlpHTTP) transient() {}

// shutdown stops the exporter: a batch being sent is given up.
func (e *otlpHTTP) shutdown(context.Context) error {
	e.stop()
	e.client.CloseIdleConnections()
	return nil
}
