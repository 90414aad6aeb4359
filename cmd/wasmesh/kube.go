package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/wasmesh/wasmesh/internal/kube"
)

// kubeFlags are serve's flags of the cluster mode.
type kubeFlags struct {
	namespace, kubeconfig, replica string
	leaseDuration                  time.Duration
}

// newKubeSource is the cluster as a config source, and the fleet of
// replicas reading it: the objects of the namespace, through the API
// server the kubeconfig (or $KUBECONFIG, ~/.kube/config, or the pod's
// service account, as kubectl resolves them) points at; the file at path,
// data, keeps the gateway's own settings; load takes each config
// assembled.
func newKubeSource(kf kubeFlags, path string, data []byte, load func(context.Context, []byte) error, log *slog.Logger) (*kube.Source, *kube.Fleet, error) {
	// client-go's own lines (its watches' and the leader election's
	// failures) go to the gateway's log, in its format: JSON lines stay
	// JSON.
	klog.SetSlogLogger(log.With("component", "client-go"))
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = kf.kubeconfig
	rc, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, nil, fmt.Errorf("kubernetes: %w", err)
	}
	rc.UserAgent = "wasmesh"
	// client-go's default of 5 requests a second would take minutes to
	// write the status of a thousand objects.
	rc.QPS, rc.Burst = 50, 100
	src, err := kube.New(rc, kube.Options{Namespace: kf.namespace, Base: data, BasePath: path, Load: load, Logger: log})
	if err != nil {
		return nil, nil, err
	}
	replica := kf.replica
	if replica == "" {
		replica = os.Getenv("POD_NAME")
	}
	if replica == "" {
		host, _ := os.Hostname()
		replica = host + "-" + strconv.Itoa(os.Getpid())
	}
	fleet, err := src.NewFleet(rc, kube.FleetOptions{Identity: replica, LeaseDuration: kf.leaseDuration})
	if err != nil {
		return nil, nil, err
	}
	return src, fleet, nil
}
