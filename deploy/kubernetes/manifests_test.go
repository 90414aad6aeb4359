package kubernetes

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	yaml "go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"

	"github.com/wasmesh/wasmesh/config"
	"github.com/wasmesh/wasmesh/internal/kube"
)

// kubeVersion is the Kubernetes version the manifests are validated
// against: the oldest they support (preStop's sleep action is 1.30).
const kubeVersion = "1.30.0"

// graceMargin is what terminationGracePeriodSeconds must leave after
// preStop, drain_delay and drain_timeout (docs/operations.md#grace-period).
const graceMargin = 10 * time.Second

// need returns the path of a command-line tool, skipping the test when it is
// missing, or failing it when CI is set (CI installs it:
// examples/toolchains.sh).
func need(t *testing.T, tool, install string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err == nil {
		return p
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s not found with CI=%s: %s", tool, os.Getenv("CI"), install)
	}
	t.Skipf("%s not found (%s); CI fails instead of skipping", tool, install)
	return ""
}

// kubeValidate runs kubernetes-validate in strict mode (unknown fields are
// errors) over files.
func kubeValidate(t *testing.T, files ...string) {
	t.Helper()
	cmd := kubeValidateCommand(t)
	args := append([]string{"--strict", "--kubernetes-version", kubeVersion, "--quiet"}, files...)
	out, err := exec.Command(cmd[0], append(cmd[1:], args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("kubernetes-validate %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// kubeValidateCommand is the kubernetes-validate command, or python3 -m
// kubernetes_validate when pip put the package where PATH does not lead.
func kubeValidateCommand(t *testing.T) []string {
	t.Helper()
	if p, err := exec.LookPath("kubernetes-validate"); err == nil {
		return []string{p}
	}
	if py, err := exec.LookPath("python3"); err == nil && exec.Command(py, "-m", "kubernetes_validate", "--version").Run() == nil {
		return []string{py, "-m", "kubernetes_validate"}
	}
	return []string{need(t, "kubernetes-validate", "pip install kubernetes-validate, or make toolchains")}
}

// kustomize renders a kustomization directory with kubectl's built-in
// kustomize, into a file in t's temp dir.
func kustomize(t *testing.T, dir string) string {
	t.Helper()
	kubectl := need(t, "kubectl", "kubectl kustomize renders the overlays")
	out, err := exec.Command(kubectl, "kustomize", dir).Output()
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			err = fmt.Errorf("%w: %s", err, exit.Stderr)
		}
		t.Fatalf("kubectl kustomize %s: %v", dir, err)
	}
	file := filepath.Join(t.TempDir(), filepath.Base(dir)+".yaml")
	if err := os.WriteFile(file, out, 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

// kustomization is the part of a kustomization.yaml the tests read.
type kustomization struct {
	Resources []string
	Patches   []struct{ Path string }
}

func readKustomization(t *testing.T, dir string) kustomization {
	t.Helper()
	var k kustomization
	decodeFile(t, filepath.Join(dir, "kustomization.yaml"), &k)
	return k
}

func decodeFile(t *testing.T, file string, v any) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
}

// TestManifestsValidate: every manifest of the base, and both rendered
// kustomizations, pass the Kubernetes schemas with unknown fields refused.
func TestManifestsValidate(t *testing.T) {
	k := readKustomization(t, "base")
	var files []string
	for _, r := range k.Resources {
		files = append(files, filepath.Join("base", r))
	}
	kubeValidate(t, files...)
	for _, dir := range []string{"base", "spiffe", "cluster", "crds"} {
		t.Run(dir, func(t *testing.T) { kubeValidate(t, kustomize(t, dir)) })
	}
}

// TestKustomizationListsEveryManifest: a manifest added to base/ but not to
// its kustomization.yaml would never be applied.
func TestKustomizationListsEveryManifest(t *testing.T) {
	k := readKustomization(t, "base")
	files, err := filepath.Glob("base/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, f := range files {
		if b := filepath.Base(f); b != "kustomization.yaml" {
			want = append(want, b)
		}
	}
	got := slices.Sorted(slices.Values(k.Resources))
	if !slices.Equal(got, want) {
		t.Fatalf("base/kustomization.yaml lists %v, base/ holds %v", got, want)
	}
}

// The parts of the manifests the consistency checks read.
type (
	configMap struct {
		Metadata struct{ Name string }
		Data     map[string]string
	}
	deployment struct {
		Spec struct {
			Replicas int
			Template struct {
				Metadata struct{ Labels, Annotations map[string]string }
				Spec     podSpec
			}
		}
	}
	podSpec struct {
		TerminationGracePeriodSeconds *int   `yaml:"terminationGracePeriodSeconds"`
		ServiceAccountName            string `yaml:"serviceAccountName"`
		AutomountServiceAccountToken  *bool  `yaml:"automountServiceAccountToken"`
		SecurityContext               struct {
			RunAsNonRoot *bool `yaml:"runAsNonRoot"`
		} `yaml:"securityContext"`
		Containers []container
		Volumes    []volume
	}
	container struct {
		Name string
		Args []string
		Env  []struct {
			Name      string
			Value     string
			ValueFrom *struct {
				FieldRef *struct {
					FieldPath string `yaml:"fieldPath"`
				} `yaml:"fieldRef"`
			} `yaml:"valueFrom"`
		}
		Ports []struct {
			Name          string
			ContainerPort int `yaml:"containerPort"`
		}
		StartupProbe   *probe `yaml:"startupProbe"`
		LivenessProbe  *probe `yaml:"livenessProbe"`
		ReadinessProbe *probe `yaml:"readinessProbe"`
		Lifecycle      struct {
			PreStop *struct {
				Sleep *struct{ Seconds int }
				Exec  *struct{ Command []string }
			} `yaml:"preStop"`
		}
		VolumeMounts []struct {
			Name      string
			MountPath string `yaml:"mountPath"`
			SubPath   string `yaml:"subPath"`
			ReadOnly  bool   `yaml:"readOnly"`
		} `yaml:"volumeMounts"`
		SecurityContext struct {
			ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
			AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
		} `yaml:"securityContext"`
		Resources struct{ Requests, Limits map[string]string }
	}
	probe struct {
		HTTPGet *struct {
			Path string
			Port any // a number or a port name
		} `yaml:"httpGet"`
	}
	volume struct {
		Name      string
		ConfigMap *struct{ Name string } `yaml:"configMap"`
		EmptyDir  *struct{}              `yaml:"emptyDir"`
		CSI       *struct {
			Driver   string
			ReadOnly bool `yaml:"readOnly"`
		} `yaml:"csi"`
	}
	service struct {
		Spec struct {
			Selector map[string]string
			Ports    []struct {
				Name       string
				TargetPort any `yaml:"targetPort"`
			}
		}
	}
)

// manifests is the base, decoded.
type manifests struct {
	cm  configMap
	dep deployment
	svc service
	c   container // the wasmesh container
}

func readBase(t *testing.T) *manifests {
	t.Helper()
	m := &manifests{}
	decodeFile(t, "base/configmap.yaml", &m.cm)
	decodeFile(t, "base/deployment.yaml", &m.dep)
	decodeFile(t, "base/service.yaml", &m.svc)
	for _, c := range m.dep.Spec.Template.Spec.Containers {
		if c.Name == "wasmesh" {
			m.c = c
		}
	}
	if m.c.Name == "" {
		t.Fatal(`base/deployment.yaml: no container "wasmesh"`)
	}
	return m
}

// configFlag returns the --config flag's value.
func (c container) configFlag(t *testing.T) string {
	t.Helper()
	return c.flag(t, "--config")
}

func (c container) flag(t *testing.T, name string) string {
	t.Helper()
	for i, a := range c.Args {
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v
		}
		if a == name && i+1 < len(c.Args) {
			return c.Args[i+1]
		}
	}
	t.Fatalf("the wasmesh container's args %q have no %s", c.Args, name)
	return ""
}

// mountOf returns the mount path under which file lies and the mount's volume.
func (m *manifests) mountOf(file string) (mountPath string, v volume, subPath string, readOnly bool) {
	for _, vm := range m.c.VolumeMounts {
		if file == vm.MountPath || strings.HasPrefix(file, vm.MountPath+"/") {
			for _, vol := range m.dep.Spec.Template.Spec.Volumes {
				if vol.Name == vm.Name {
					v = vol
				}
			}
			return vm.MountPath, v, vm.SubPath, vm.ReadOnly
		}
	}
	return "", v, "", false
}

// containerPort resolves a probe's or a Service's port (a number or a
// name) to the container's port number.
func (c container) containerPort(t *testing.T, what string, port any) int {
	t.Helper()
	switch p := port.(type) {
	case int:
		return p
	case string:
		if n, err := strconv.Atoi(p); err == nil {
			return n
		}
		for _, cp := range c.Ports {
			if cp.Name == p {
				return cp.ContainerPort
			}
		}
	}
	t.Fatalf("%s: port %v is not a port of the wasmesh container %+v", what, port, c.Ports)
	return 0
}

// ociModule is a module reference by registry and digest.
var ociModule = regexp.MustCompile(`oci://[^\s@]+@(sha256:[0-9a-f]{64})`)

// parseConfig parses the config the ConfigMap holds, as the gateway would
// at path. When config.Parse refuses only the oci:// module references
// (a branch without the OCI registry support), it parses the same config
// with each reference replaced by its digest, so the other checks still
// run, and reports ociRefused.
func parseConfig(t *testing.T, path, data string) (cfg *config.Config, ociRefused error) {
	t.Helper()
	cfg, err := config.Parse(path, []byte(data))
	if err == nil {
		return cfg, nil
	}
	if !onlyOCIRefused(err) {
		t.Fatalf("the ConfigMap's config does not parse:\n%v", err)
	}
	cfg, err2 := config.Parse(path, []byte(ociModule.ReplaceAllString(data, "$1")))
	if err2 != nil {
		t.Fatalf("the ConfigMap's config, oci:// references replaced by their digests, does not parse:\n%v", err2)
	}
	return cfg, err
}

// onlyOCIRefused reports whether every problem in err is a module field
// refusing an oci:// reference.
func onlyOCIRefused(err error) bool {
	for _, line := range strings.Split(err.Error(), "\n") {
		if !strings.Contains(line, ".module: ") || !strings.Contains(line, `"oci://`) {
			return false
		}
	}
	return true
}

// TestConfigParses: the ConfigMap's wasmesh.yaml, as written (oci://
// modules included), is a config the gateway accepts.
func TestConfigParses(t *testing.T) {
	m := readBase(t)
	path := m.c.configFlag(t)
	if _, refused := parseConfig(t, path, m.cm.Data[filepath.Base(path)]); refused != nil {
		t.Skipf("config.Parse on this branch refuses the oci:// module references (the OCI registry support is not merged yet); everything else parses:\n%v", refused)
	}
}

// TestConfigMatchesDeployment: the config in the ConfigMap and the
// Deployment agree. Each check fails when one side is edited alone.
func TestConfigMatchesDeployment(t *testing.T) {
	m := readBase(t)
	pod := m.dep.Spec.Template.Spec
	configPath := m.c.configFlag(t)
	data, ok := m.cm.Data[path.Base(configPath)]
	if !ok {
		t.Fatalf("--config %s: the ConfigMap has no key %q (keys %v)", configPath, path.Base(configPath), keys(m.cm.Data))
	}
	cfg, _ := parseConfig(t, configPath, data)

	t.Run("config mounted as a directory", func(t *testing.T) {
		dir, vol, subPath, _ := m.mountOf(configPath)
		switch {
		case dir == "":
			t.Fatalf("--config %s is under no volume mount", configPath)
		case vol.ConfigMap == nil || vol.ConfigMap.Name != m.cm.Metadata.Name:
			t.Fatalf("--config %s is on volume %q, not ConfigMap %q", configPath, vol.Name, m.cm.Metadata.Name)
		case subPath != "":
			t.Fatalf("the ConfigMap is mounted with subPath %q: it would never see an update", subPath)
		case path.Dir(configPath) != dir:
			t.Fatalf("--config %s is not directly in the ConfigMap's mount %s, where the kubelet swaps ..data", configPath, dir)
		}
	})

	t.Run("GOMEMLIMIT under the memory limit", func(t *testing.T) {
		limit := mebibytes(t, "limits.memory", m.c.Resources.Limits["memory"], "Mi", "Gi")
		for _, e := range m.c.Env {
			if e.Name == "GOMEMLIMIT" {
				soft := mebibytes(t, "GOMEMLIMIT", e.Value, "MiB", "GiB")
				if soft <= 0 || soft*5 > limit*4 {
					t.Fatalf("GOMEMLIMIT %s against a memory limit of %s: want at most 4/5 of it, the rest for what Go does not count", e.Value, m.c.Resources.Limits["memory"])
				}
				return
			}
		}
		t.Error("no GOMEMLIMIT: the heap floor would let the heap grow without regard to the container's memory limit")
	})

	t.Run("probes on the health listener", func(t *testing.T) {
		if cfg.Health == "" {
			t.Fatal("the config has no health listener: the kubelet cannot reach the admin API on loopback")
		}
		healthPort := port(t, "health", cfg.Health)
		for _, p := range []struct {
			name, path string
			probe      *probe
		}{
			{"startupProbe", "/healthz", m.c.StartupProbe},
			{"livenessProbe", "/healthz", m.c.LivenessProbe},
			{"readinessProbe", "/readyz", m.c.ReadinessProbe},
		} {
			if p.probe == nil || p.probe.HTTPGet == nil {
				t.Errorf("%s: missing, or not httpGet", p.name)
				continue
			}
			if got := m.c.containerPort(t, p.name, p.probe.HTTPGet.Port); got != healthPort {
				t.Errorf("%s probes port %d, the health listener is on %d (%s)", p.name, got, healthPort, cfg.Health)
			}
			if p.probe.HTTPGet.Path != p.path {
				t.Errorf("%s probes %s, want %s", p.name, p.probe.HTTPGet.Path, p.path)
			}
		}
		if a := m.dep.Spec.Template.Metadata.Annotations["prometheus.io/port"]; a != strconv.Itoa(healthPort) {
			t.Errorf("prometheus.io/port is %q, /metrics is on the health listener's %d", a, healthPort)
		}
	})

	t.Run("admin API on loopback", func(t *testing.T) {
		if cfg.Admin == "" {
			return
		}
		host, _, err := net.SplitHostPort(cfg.Admin)
		if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
			t.Fatalf("admin: %q: the admin API is unauthenticated, keep it on loopback", cfg.Admin)
		}
	})

	t.Run("service to the gateway listener", func(t *testing.T) {
		listen := port(t, "listen", cfg.Listen)
		if len(m.svc.Spec.Ports) == 0 {
			t.Fatal("the Service has no ports")
		}
		for _, sp := range m.svc.Spec.Ports {
			if got := m.c.containerPort(t, "Service port "+sp.Name, sp.TargetPort); got != listen {
				t.Errorf("Service port %s targets %d, the gateway listens on %d (%s)", sp.Name, got, listen, cfg.Listen)
			}
		}
		for k, v := range m.svc.Spec.Selector {
			if m.dep.Spec.Template.Metadata.Labels[k] != v {
				t.Errorf("the Service selects %s=%s, the pods are labelled %v", k, v, m.dep.Spec.Template.Metadata.Labels)
			}
		}
	})

	t.Run("grace period covers the drain", func(t *testing.T) {
		if pod.TerminationGracePeriodSeconds == nil {
			t.Fatal("no terminationGracePeriodSeconds: the default 30s is set by no one on purpose")
		}
		grace := time.Duration(*pod.TerminationGracePeriodSeconds) * time.Second
		var preStop time.Duration
		if ps := m.c.Lifecycle.PreStop; ps != nil {
			if ps.Exec != nil {
				t.Fatalf("preStop exec %q: the image has no shell; use the sleep action", ps.Exec.Command)
			}
			if ps.Sleep != nil {
				preStop = time.Duration(ps.Sleep.Seconds) * time.Second
			}
		}
		need := preStop + cfg.DrainDelay + cfg.DrainTimeout + graceMargin
		if grace < need {
			t.Fatalf("terminationGracePeriodSeconds %s < preStop %s + drain_delay %s + drain_timeout %s + %s",
				grace, preStop, cfg.DrainDelay, cfg.DrainTimeout, graceMargin)
		}
	})

	t.Run("writable store, cache and last good config", func(t *testing.T) {
		for what, dir := range map[string]string{"store": cfg.Store, "--cache-dir": m.c.flag(t, "--cache-dir"), "--resume": path.Dir(m.c.flag(t, "--resume"))} {
			mount, vol, _, ro := m.mountOf(dir)
			if mount == "" || vol.EmptyDir == nil || ro {
				t.Errorf("%s %s is not on a writable emptyDir (the root file system is read-only)", what, dir)
			}
		}
	})

	t.Run("service account", func(t *testing.T) {
		var sa configMap // only its name is read
		decodeFile(t, "base/serviceaccount.yaml", &sa)
		if pod.ServiceAccountName != sa.Metadata.Name {
			t.Fatalf("the pods run as service account %q, base/serviceaccount.yaml defines %q", pod.ServiceAccountName, sa.Metadata.Name)
		}
	})

	t.Run("hardening", func(t *testing.T) {
		sc := m.c.SecurityContext
		if m.dep.Spec.Replicas < 2 {
			t.Errorf("replicas %d, want at least 2", m.dep.Spec.Replicas)
		}
		if nr := pod.SecurityContext.RunAsNonRoot; nr == nil || !*nr {
			t.Error("the pod does not set runAsNonRoot")
		}
		if ro := sc.ReadOnlyRootFilesystem; ro == nil || !*ro {
			t.Error("the container does not set readOnlyRootFilesystem")
		}
		if pe := sc.AllowPrivilegeEscalation; pe == nil || *pe {
			t.Error("the container does not set allowPrivilegeEscalation: false")
		}
		if m.c.Resources.Requests["cpu"] == "" || m.c.Resources.Requests["memory"] == "" || m.c.Resources.Limits["memory"] == "" {
			t.Errorf("resources %+v: want cpu and memory requests and a memory limit", m.c.Resources)
		}
	})
}

// TestSpiffeOverlay: the SPIFFE overlay's config is the base config plus a
// tls block whose socket lies in the CSI driver's mount.
func TestSpiffeOverlay(t *testing.T) {
	m := readBase(t)
	configPath := m.c.configFlag(t)
	key := path.Base(configPath)
	var cmPatch configMap
	decodeFile(t, "spiffe/configmap-patch.yaml", &cmPatch)
	var depPatch deployment
	decodeFile(t, "spiffe/deployment-patch.yaml", &depPatch)

	base, overlay := m.cm.Data[key], cmPatch.Data[key]
	extra, ok := strings.CutPrefix(overlay, strings.TrimRight(base, "\n")+"\n")
	if !ok {
		t.Fatalf("spiffe/configmap-patch.yaml's %s does not start with the base config: edit both", key)
	}
	var top map[string]any
	if err := yaml.Unmarshal([]byte(extra), &top); err != nil || len(top) != 1 || top["tls"] == nil {
		t.Fatalf("after the base config, spiffe/configmap-patch.yaml adds %q, want only a tls block", extra)
	}
	cfg, _ := parseConfig(t, configPath, overlay)
	if cfg.TLS == nil || cfg.TLS.SpiffeSocket == "" {
		t.Fatal("the overlay's config has no tls.spiffe_socket")
	}
	socket, ok := strings.CutPrefix(cfg.TLS.SpiffeSocket, "unix://")
	if !ok {
		t.Fatalf("tls.spiffe_socket %q is not a unix:// address", cfg.TLS.SpiffeSocket)
	}

	merged := *m
	pod := depPatch.Spec.Template.Spec
	merged.dep.Spec.Template.Spec.Volumes = append(slices.Clone(m.dep.Spec.Template.Spec.Volumes), pod.Volumes...)
	for _, c := range pod.Containers {
		if c.Name == "wasmesh" {
			merged.c.VolumeMounts = append(slices.Clone(m.c.VolumeMounts), c.VolumeMounts...)
		}
	}
	mount, vol, _, _ := merged.mountOf(socket)
	if mount == "" || vol.CSI == nil || vol.CSI.Driver != "csi.spiffe.io" || !vol.CSI.ReadOnly {
		t.Fatalf("tls.spiffe_socket %s is not in a read-only csi.spiffe.io volume mount (got mount %q, volume %+v)", socket, mount, vol)
	}
	if path.Dir(socket) != mount {
		t.Fatalf("tls.spiffe_socket %s is not directly in the CSI mount %s", socket, mount)
	}
}

// port returns the port number of a host:port address.
func port(t *testing.T, field, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	n, err2 := strconv.Atoi(p)
	if err != nil || err2 != nil || n == 0 {
		t.Fatalf("%s: %q has no fixed port", field, addr)
	}
	return n
}

func keys(m map[string]string) []string {
	return slices.Sorted(func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	})
}

// TestClusterOverlay: the cluster overlay runs the gateway from its own
// namespace's objects: its config has only the gateway's settings (which
// the cluster source takes), its args name the pod's namespace and its
// env the pod's name, it runs as the service account rbac.yaml binds,
// with its token mounted; hello.yaml's objects make a config the gateway
// accepts.
func TestClusterOverlay(t *testing.T) {
	m := readBase(t)
	var cm configMap
	decodeFile(t, "cluster/configmap-patch.yaml", &cm)
	var dep deployment
	decodeFile(t, "cluster/deployment-patch.yaml", &dep)
	configPath := m.c.configFlag(t)
	settings, ok := cm.Data[path.Base(configPath)]
	if !ok {
		t.Fatalf("cluster/configmap-patch.yaml has no %s", path.Base(configPath))
	}
	load := func(context.Context, []byte) error { return nil }
	if _, err := kube.New(&rest.Config{Host: "https://kubernetes.invalid"}, kube.Options{Namespace: "ns", Base: []byte(settings), BasePath: configPath, Load: load}); err != nil {
		t.Errorf("the cluster source refuses the overlay's config: %v", err)
	}
	var c container
	for _, cc := range dep.Spec.Template.Spec.Containers {
		if cc.Name == "wasmesh" {
			c = cc
		}
	}
	if got := c.flag(t, "--kubernetes"); got != "$(POD_NAMESPACE)" {
		t.Errorf("--kubernetes %s, want $(POD_NAMESPACE)", got)
	}
	if got := c.configFlag(t); got != configPath {
		t.Errorf("--config %s, the base mounts %s", got, configPath)
	}
	env := map[string]string{}
	for _, e := range c.Env {
		if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil {
			env[e.Name] = e.ValueFrom.FieldRef.FieldPath
		}
	}
	if env["POD_NAMESPACE"] != "metadata.namespace" || env["POD_NAME"] != "metadata.name" {
		t.Errorf("env %v, want POD_NAMESPACE from metadata.namespace and POD_NAME from metadata.name", env)
	}
	pod := dep.Spec.Template.Spec
	if pod.AutomountServiceAccountToken == nil || !*pod.AutomountServiceAccountToken {
		t.Error("the service account's token is not mounted: the gateway cannot reach the API server")
	}
	data, err := os.ReadFile("cluster/rbac.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	bound := false
	for {
		var doc struct {
			Kind     string
			Metadata struct{ Name string }
			Subjects []struct{ Kind, Name string }
		}
		if err := dec.Decode(&doc); err != nil {
			break
		}
		switch doc.Kind {
		case "ServiceAccount":
			if doc.Metadata.Name != pod.ServiceAccountName {
				t.Errorf("rbac.yaml's ServiceAccount is %s, the pods run as %s", doc.Metadata.Name, pod.ServiceAccountName)
			}
		case "RoleBinding":
			for _, s := range doc.Subjects {
				bound = bound || (s.Kind == "ServiceAccount" && s.Name == pod.ServiceAccountName)
			}
		}
	}
	if !bound {
		t.Errorf("rbac.yaml binds no Role to %s", pod.ServiceAccountName)
	}

	var services, routes []*unstructured.Unstructured
	objs, err := os.ReadFile("cluster/hello.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dec = yaml.NewDecoder(strings.NewReader(string(objs)))
	for {
		var doc map[string]any
		if err := dec.Decode(&doc); err != nil {
			break
		}
		j, _ := json.Marshal(doc) // JSON's types, as objects from the API server hold
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(j); err != nil {
			t.Fatalf("hello.yaml: %v", err)
		}
		switch u.GetKind() {
		case "WasmeshService":
			services = append(services, u)
		case "WasmeshRoute":
			routes = append(routes, u)
		default:
			t.Errorf("hello.yaml: a %s", u.GetKind())
		}
	}
	assembled, _ := kube.Assemble([]byte(settings), kube.Objects{Services: services, Routes: routes})
	if _, err := config.Parse("hello.yaml", assembled); err != nil {
		t.Errorf("hello.yaml's objects with the overlay's settings do not make a config: %v", err)
	}
}

// mebibytes is a size written with one of the two suffixes (MiB and GiB,
// in the spelling of what it is), in MiB.
func mebibytes(t *testing.T, what, v, mi, gi string) int {
	t.Helper()
	for suffix, scale := range map[string]int{mi: 1, gi: 1024} {
		if n, ok := strings.CutSuffix(v, suffix); ok {
			if i, err := strconv.Atoi(n); err == nil {
				return i * scale
			}
		}
	}
	t.Fatalf("%s %q: want a whole number of %s or %s", what, v, mi, gi)
	return 0
}
