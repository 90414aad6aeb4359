package tests

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	yaml "go.yaml.in/yaml/v3"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/clientcmd"
)

// apiServer is a real Kubernetes control plane, etcd and kube-apiserver
// as processes on loopback (no kubelet: gateways run as local processes
// with a kubeconfig, as envtest does), built from the Go module proxy by
// tools/controlplane/build.sh and shared by the run: the CRDs of
// deploy/kubernetes/crds are installed once.
type apiServer struct {
	kubeconfig string
	client     dynamic.Interface
	// restart stops kube-apiserver and, after down, starts it again on the
	// same port, certificates and etcd, and waits until it is ready.
	restart func(down time.Duration) error
}

var controlPlane struct {
	once sync.Once
	api  *apiServer
	err  error
}

// startAPIServer returns the run's control plane, started at the first
// call. Without the binaries (make controlplane) the test is skipped, or
// fails under CI, which builds them.
func startAPIServer(t *testing.T) *apiServer {
	t.Helper()
	controlPlane.once.Do(func() { controlPlane.api, controlPlane.err = bootAPIServer() })
	if controlPlane.err != nil {
		if os.Getenv("CI") == "" && strings.Contains(controlPlane.err.Error(), "make controlplane") {
			t.Skip(controlPlane.err)
		}
		t.Fatal(controlPlane.err)
	}
	return controlPlane.api
}

// freePorts returns n distinct loopback ports free now, for a child
// process to listen on: their listeners are all open until all are
// chosen, so that none is handed out twice.
func freePorts(n int) ([]int, error) {
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func bootAPIServer() (*apiServer, error) {
	out, err := exec.Command(repoPath("tools", "controlplane", "build.sh"), "--print-dir").Output()
	if err != nil {
		return nil, fmt.Errorf("tools/controlplane/build.sh --print-dir: %w", err)
	}
	binDir := strings.TrimSpace(string(out))
	for _, b := range []string{"etcd", "kube-apiserver"} {
		if _, err := os.Stat(filepath.Join(binDir, b)); err != nil {
			return nil, fmt.Errorf("no %s in %s: run make controlplane (it builds etcd and kube-apiserver from the Go module proxy, once)", b, binDir)
		}
	}
	dir, err := os.MkdirTemp("", "wasmesh-k8s-")
	if err != nil {
		return nil, err
	}
	var procs []*exec.Cmd
	stop := func() {
		for i := len(procs) - 1; i >= 0; i-- {
			procs[i].Process.Signal(os.Interrupt)
			done := make(chan struct{})
			go func() { procs[i].Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				procs[i].Process.Kill()
				<-done
			}
		}
		os.RemoveAll(dir)
	}
	atExit.mu.Lock()
	atExit.fns = append(atExit.fns, stop)
	atExit.mu.Unlock()
	run := func(name string, args ...string) error {
		cmd := exec.Command(filepath.Join(binDir, name), args...)
		logf, err := os.OpenFile(filepath.Join(dir, name+".log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			return err
		}
		procs = append(procs, cmd)
		return nil
	}
	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	client, peer, secure := ports[0], ports[1], ports[2]
	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", client)
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", peer)
	if err := run("etcd", "--name", "t", "--data-dir", filepath.Join(dir, "etcd"), "--listen-client-urls", etcdURL,
		"--advertise-client-urls", etcdURL, "--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
		"--initial-cluster", "t="+peerURL); err != nil {
		return nil, err
	}
	if err := waitHTTP(etcdURL+"/health", nil, 30*time.Second); err != nil {
		return nil, fmt.Errorf("etcd: %w (log %s)", err, filepath.Join(dir, "etcd.log"))
	}
	saKey, saPub := filepath.Join(dir, "sa.key"), filepath.Join(dir, "sa.pub")
	if out, err := exec.Command("openssl", "genrsa", "-out", saKey, "2048").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("openssl genrsa: %v: %s", err, out)
	}
	if out, err := exec.Command("openssl", "rsa", "-in", saKey, "-pubout", "-out", saPub).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("openssl rsa: %v: %s", err, out)
	}
	const token = "wasmesh-test-admin-token"
	tokens := filepath.Join(dir, "tokens.csv")
	if err := os.WriteFile(tokens, []byte(token+`,admin,uid-admin,"system:masters"`+"\n"), 0o600); err != nil {
		return nil, err
	}
	apiArgs := []string{"--etcd-servers=" + etcdURL, fmt.Sprintf("--secure-port=%d", secure),
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", "--endpoint-reconciler-type=none",
		"--cert-dir=" + filepath.Join(dir, "certs"), "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + saPub, "--service-account-signing-key-file=" + saKey,
		"--token-auth-file=" + tokens, "--authorization-mode=RBAC", "--service-cluster-ip-range=10.96.0.0/16"}
	server := fmt.Sprintf("https://127.0.0.1:%d", secure)
	startAPI := func() error {
		if err := run("kube-apiserver", apiArgs...); err != nil {
			return err
		}
		if err := waitHTTP(server+"/readyz", map[string]string{"Authorization": "Bearer " + token}, 90*time.Second); err != nil {
			return fmt.Errorf("kube-apiserver: %w (log %s)", err, filepath.Join(dir, "kube-apiserver.log"))
		}
		return nil
	}
	if err := startAPI(); err != nil {
		return nil, err
	}
	kc := map[string]any{
		"apiVersion": "v1", "kind": "Config", "current-context": "test",
		"clusters": []any{map[string]any{"name": "test", "cluster": map[string]any{"server": server, "insecure-skip-tls-verify": true}}},
		"users":    []any{map[string]any{"name": "admin", "user": map[string]any{"token": token}}},
		"contexts": []any{map[string]any{"name": "test", "context": map[string]any{"cluster": "test", "user": "admin", "namespace": "default"}}},
	}
	b, _ := yaml.Marshal(kc)
	api := &apiServer{kubeconfig: filepath.Join(dir, "kubeconfig")}
	api.restart = func(down time.Duration) error {
		i := len(procs) - 1 // kube-apiserver, started last
		procs[i].Process.Signal(os.Interrupt)
		procs[i].Wait()
		procs = procs[:i]
		time.Sleep(down)
		return startAPI()
	}
	if err := os.WriteFile(api.kubeconfig, b, 0o600); err != nil {
		return nil, err
	}
	rc, err := clientcmd.BuildConfigFromFlags("", api.kubeconfig)
	if err != nil {
		return nil, err
	}
	rc.QPS, rc.Burst = 500, 1000 // client-go's 5 a second would make 1,000 objects take minutes
	if api.client, err = dynamic.NewForConfig(rc); err != nil {
		return nil, err
	}
	return api, api.installCRDs()
}

// waitHTTP waits until url answers 200.
func waitHTTP(url string, header map[string]string, within time.Duration) error {
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	deadline := time.Now().Add(within)
	var last error
	for time.Now().Before(deadline) {
		req, _ := http.NewRequest("GET", url, nil)
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("%s answered %s", url, resp.Status)
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("not ready after %s: %v", within, last)
}

var crdResource = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// installCRDs creates the CRDs of deploy/kubernetes/crds and waits until
// they are served.
func (a *apiServer) installCRDs() error {
	files, err := filepath.Glob(repoPath("deploy", "kubernetes", "crds", "wasmesh.dev_*.yaml"))
	if err != nil || len(files) == 0 {
		return fmt.Errorf("no CRDs in deploy/kubernetes/crds: %v", err)
	}
	ctx := context.Background()
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		var obj map[string]any
		if err := yaml.Unmarshal(b, &obj); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		u := &unstructured.Unstructured{Object: obj}
		if _, err := a.client.Resource(crdResource).Create(ctx, u, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("%s: %w", f, err)
		}
	}
	// Served once listed without error (right after Established, a list
	// can still get 429 while the storage initialises).
	deadline := time.Now().Add(30 * time.Second)
	for _, gvr := range []schema.GroupVersionResource{wasmeshServices, wasmeshRoutes} {
		for {
			_, err := a.client.Resource(gvr).Namespace("default").List(ctx, metav1.ListOptions{})
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s not served: %w", gvr.Resource, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return nil
}

var (
	wasmeshServices = schema.GroupVersionResource{Group: "wasmesh.dev", Version: "v1alpha1", Resource: "wasmeshservices"}
	wasmeshRoutes   = schema.GroupVersionResource{Group: "wasmesh.dev", Version: "v1alpha1", Resource: "wasmeshroutes"}
)
