package main

import (
	"fmt"
	"log/slog"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/wasmesh/wasmesh/internal/kube"
	"github.com/wasmesh/wasmesh/mesh"
)

// newKubeSource is the cluster as the config source of g: the objects of
// namespace, through the API server kubeconfig (or $KUBECONFIG,
// ~/.kube/config, or the pod's service account, as kubectl resolves them)
// points at; the file at path, data, keeps the gateway's own settings.
func newKubeSource(kubeconfig, namespace, path string, data []byte, g *mesh.Gateway, log *slog.Logger) (*kube.Source, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = kubeconfig
	rc, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubernetes: %w", err)
	}
	rc.UserAgent = "wasmesh"
	// client-go's default of 5 requests a second would take minutes to
	// write the status of a thousand objects.
	rc.QPS, rc.Burst = 50, 100
	return kube.New(rc, kube.Options{Namespace: namespace, Base: data, BasePath: path, Load: g.Reload, Logger: log})
}
