package oci

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/wasmesh/wasmesh/modules"
)

// Media types of the Wasm OCI Artifact layout.
const (
	// ConfigMediaType is the config's media type; it identifies the artifact
	// as Wasm, so the manifest sets no separate artifactType.
	ConfigMediaType = "application/vnd.wasm.config.v0+json"
	// LayerMediaType is the media type of the layer holding the module.
	LayerMediaType = "application/wasm"
	// ManifestMediaType is the OCI image manifest's media type.
	ManifestMediaType = ocispec.MediaTypeImageManifest
)

// SignatureAnnotation prefixes the manifest annotations that carry a
// module's signatures: "dev.wasmesh.signature.<key id>", whose value is the
// JSON of a [signatureValue] — the signer's public key (PEM) and the ed25519
// signature of the module's digest (base64), as the store keeps them.
const SignatureAnnotation = "dev.wasmesh.signature."

// Limits on what Pull reads before verifying it.
const (
	maxManifestSize = 4 << 20
	maxConfigSize   = 1 << 20
)

// wasmConfig is the config blob: the fields of the Wasm OCI Artifact layout
// that describe a WASI preview 1 module.
type wasmConfig struct {
	// Created is the Unix epoch in what Push writes, so the same module and
	// signatures always give the same manifest digest.
	Created      time.Time `json:"created"`
	Architecture string    `json:"architecture"`
	OS           string    `json:"os"`
	LayerDigests []string  `json:"layerDigests"`
}

// signatureValue is the value of a signature annotation.
type signatureValue struct {
	PublicKey string `json:"public_key"` // PEM, PKIX
	Signature string `json:"signature"`  // base64 ed25519 over "sha256:<64 hex>"
}

// blob is content to push, with its descriptor.
type blob struct {
	desc ocispec.Descriptor
	data []byte
}

func newBlob(mediaType string, data []byte) blob {
	return blob{desc: ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(data), Size: int64(len(data))}, data: data}
}

// artifact lays out a module and its signatures: the config, the layer and
// the manifest.
func artifact(wasm []byte, sigs []modules.Signature) (config, layer, manifest blob, err error) {
	layer = newBlob(LayerMediaType, wasm)
	cfg, err := json.Marshal(wasmConfig{Created: time.Unix(0, 0).UTC(), Architecture: "wasm", OS: osOf(wasm), LayerDigests: []string{layer.desc.Digest.String()}})
	if err != nil {
		return
	}
	config = newBlob(ConfigMediaType, cfg)
	m := ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ManifestMediaType,
		Config:    config.desc,
		Layers:    []ocispec.Descriptor{layer.desc},
	}
	for _, s := range sigs {
		der, err := x509.MarshalPKIXPublicKey(s.PublicKey)
		if err != nil {
			return config, layer, manifest, err
		}
		v, err := json.Marshal(signatureValue{
			PublicKey: string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})),
			Signature: base64.StdEncoding.EncodeToString(s.Sig),
		})
		if err != nil {
			return config, layer, manifest, err
		}
		if m.Annotations == nil {
			m.Annotations = map[string]string{}
		}
		m.Annotations[SignatureAnnotation+s.KeyID] = string(v)
	}
	data, err := json.Marshal(m)
	if err != nil {
		return
	}
	return config, layer, newBlob(ManifestMediaType, data), nil
}

// parseManifest checks that data is a Wasm OCI artifact with one module
// layer and returns it.
func parseManifest(data []byte) (*ocispec.Manifest, error) {
	var m ocispec.Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	switch {
	case m.SchemaVersion != 2:
		return nil, fmt.Errorf("manifest: schemaVersion %d, want 2", m.SchemaVersion)
	case m.MediaType != "" && m.MediaType != ManifestMediaType:
		return nil, fmt.Errorf("manifest: media type %q, want %q", m.MediaType, ManifestMediaType)
	case m.Config.MediaType != ConfigMediaType:
		return nil, fmt.Errorf("not a Wasm artifact: config media type %q, want %q", m.Config.MediaType, ConfigMediaType)
	case len(m.Layers) != 1:
		return nil, fmt.Errorf("manifest has %d layers, want one %s layer", len(m.Layers), LayerMediaType)
	case m.Layers[0].MediaType != LayerMediaType:
		return nil, fmt.Errorf("layer media type %q, want %q", m.Layers[0].MediaType, LayerMediaType)
	}
	for _, d := range []ocispec.Descriptor{m.Config, m.Layers[0]} {
		if err := d.Digest.Validate(); err != nil || d.Digest.Algorithm() != digest.SHA256 {
			return nil, fmt.Errorf("%s descriptor: digest %q, want sha256:<64 hex>", d.MediaType, d.Digest)
		}
	}
	switch l := m.Layers[0]; {
	case l.Size > modules.MaxModuleSize:
		return nil, fmt.Errorf("layer of %d bytes is larger than %d", l.Size, modules.MaxModuleSize)
	case m.Config.Size > maxConfigSize:
		return nil, fmt.Errorf("config of %d bytes is larger than %d", m.Config.Size, maxConfigSize)
	}
	return &m, nil
}

// osOf is the config's os for a layer (the Wasm OCI artifact layout):
// "wasip2" for a component (its preamble's layer field is 1), "wasip1"
// for a core module.
func osOf(wasm []byte) string {
	if len(wasm) >= 8 && string(wasm[:4]) == "\x00asm" && wasm[6] == 1 && wasm[7] == 0 {
		return "wasip2"
	}
	return "wasip1"
}

// checkConfig checks the config blob against the layer, and returns the
// os it says the layer is for.
func checkConfig(data []byte, layer ocispec.Descriptor) (string, error) {
	var c wasmConfig
	if err := json.Unmarshal(data, &c); err != nil {
		return "", fmt.Errorf("config: %w", err)
	}
	switch {
	case c.Architecture != "wasm":
		return "", fmt.Errorf("config: architecture %q, want \"wasm\"", c.Architecture)
	case c.OS != "wasip1" && c.OS != "wasip2":
		return "", fmt.Errorf("config: os %q, want \"wasip1\" (a WASI preview 1 module) or \"wasip2\" (a WASI 0.2 component)", c.OS)
	case len(c.LayerDigests) > 0 && (len(c.LayerDigests) != 1 || c.LayerDigests[0] != layer.Digest.String()):
		return "", fmt.Errorf("config: layerDigests %v do not match the layer %s", c.LayerDigests, layer.Digest)
	}
	return c.OS, nil
}

// signatures reads the signature annotations of a manifest, in key id order.
func signatures(annotations map[string]string) ([]modules.Signature, error) {
	var out []modules.Signature
	for k, v := range annotations {
		id, ok := strings.CutPrefix(k, SignatureAnnotation)
		if !ok {
			continue
		}
		var sv signatureValue
		if err := json.Unmarshal([]byte(v), &sv); err != nil {
			return nil, fmt.Errorf("annotation %s: %w", k, err)
		}
		pub, err := modules.ParsePublicKey([]byte(sv.PublicKey))
		if err != nil {
			return nil, fmt.Errorf("annotation %s: public key: %w", k, err)
		}
		if got := modules.KeyID(pub); got != id {
			return nil, fmt.Errorf("annotation %s: the public key's id is %s", k, got)
		}
		sig, err := base64.StdEncoding.DecodeString(sv.Signature)
		if err != nil || len(sig) != ed25519.SignatureSize {
			return nil, fmt.Errorf("annotation %s: signature is not %d bytes of base64", k, ed25519.SignatureSize)
		}
		out = append(out, modules.Signature{KeyID: id, PublicKey: pub, Sig: sig})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].KeyID < out[j].KeyID })
	return out, nil
}
