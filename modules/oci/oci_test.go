package oci

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/registry/remote"

	"github.com/wasmesh/wasmesh/host"
	"github.com/wasmesh/wasmesh/internal/testutil"
	"github.com/wasmesh/wasmesh/modules"
)

var (
	engineOnce sync.Once
	engine     *host.Engine
)

// openStore opens a store in a temporary directory that validates modules by
// compiling them, as the CLI's and the gateway's do.
func openStore(t *testing.T) *modules.Store {
	t.Helper()
	engineOnce.Do(func() {
		var err error
		if engine, err = host.New(context.Background(), host.Options{}); err != nil {
			panic(err)
		}
	})
	s, err := modules.Open(t.TempDir(), modules.Options{Validate: engine.Validate})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// example returns a committed example guest.
func example(t *testing.T, lang string) []byte {
	t.Helper()
	wasm, err := os.ReadFile(filepath.Join("..", "..", "examples", "hello", lang, "hello.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	return wasm
}

func put(t *testing.T, s *modules.Store, wasm []byte) string {
	t.Helper()
	d, err := s.Put(context.Background(), bytes.NewReader(wasm))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func client(t *testing.T, plainHTTP ...string) *Client {
	t.Helper()
	c, err := New(Options{PlainHTTP: plainHTTP, DockerConfig: filepath.Join(t.TempDir(), "config.json")})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustParse(t *testing.T, s string) Reference {
	t.Helper()
	r, err := ParseReference(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// entries lists the modules in s, and fails unless there are want of them.
func entries(t *testing.T, s *modules.Store, want int) []modules.Entry {
	t.Helper()
	list, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != want {
		t.Fatalf("store holds %d modules, want %d: %v", len(list), want, list)
	}
	return list
}

func TestParseReference(t *testing.T) {
	const d = "sha256:9084be8d3daf1d0ebbfeecb55bb7cc1068e772d17a243857485c2192634d44ce"
	for _, tc := range []struct {
		in      string
		want    Reference
		pinned  bool
		wantErr string
	}{
		{in: "oci://127.0.0.1:5000/hello:v1", want: Reference{Registry: "127.0.0.1:5000", Repository: "hello", Tag: "v1"}},
		{in: "oci://ghcr.io/acme/apps/hello@" + d, want: Reference{Registry: "ghcr.io", Repository: "acme/apps/hello", Digest: d}, pinned: true},
		{in: "oci://ghcr.io/acme/hello:v1@" + d, want: Reference{Registry: "ghcr.io", Repository: "acme/hello", Digest: d}, pinned: true},
		{in: "oci://ghcr.io/acme/hello", want: Reference{Registry: "ghcr.io", Repository: "acme/hello"}},
		{in: "ghcr.io/acme/hello:v1", wantErr: "want oci://"},
		{in: "oci://ghcr.io/Acme/hello:v1", wantErr: "invalid OCI reference"},
		{in: "oci://ghcr.io/acme/hello@sha256:1234", wantErr: "invalid OCI reference"},
		{in: "oci://ghcr.io/acme/hello@sha512:" + strings.Repeat("ab", 64), wantErr: "want sha256"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseReference(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParseReference(%q) = %v, %v; want an error containing %q", tc.in, got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want || got.Pinned() != tc.pinned {
				t.Fatalf("ParseReference(%q) = %+v, %v; want %+v (pinned %v)", tc.in, got, err, tc.want, tc.pinned)
			}
			if again, err := ParseReference(got.String()); err != nil || again != got {
				t.Fatalf("String() = %q does not parse back: %+v, %v", got.String(), again, err)
			}
		})
	}
}

// TestPushPull pushes a module to a real registry and pulls it into another
// store, by digest and by tag.
func TestPushPull(t *testing.T) {
	reg := testutil.StartRegistry(t)
	ctx := context.Background()
	c := client(t, reg.Addr)
	src, dst := openStore(t), openStore(t)
	wasm := example(t, "rust")
	module := put(t, src, wasm)

	pinned, err := c.Push(ctx, src, module, mustParse(t, "oci://"+reg.Addr+"/wasmesh/hello:v1"))
	if err != nil {
		t.Fatal(err)
	}
	if !pinned.Pinned() || pinned.Tag != "" || !strings.HasPrefix(pinned.String(), "oci://"+reg.Addr+"/wasmesh/hello@sha256:") {
		t.Fatalf("Push returned %s, want oci://%s/wasmesh/hello@sha256:…", pinned, reg.Addr)
	}
	again, err := c.Push(ctx, src, module, mustParse(t, "oci://"+reg.Addr+"/wasmesh/hello:v2"))
	if err != nil || again != pinned {
		t.Fatalf("second push = %s, %v; want the same manifest %s", again, err, pinned)
	}

	got, err := c.Pull(ctx, dst, pinned)
	if err != nil {
		t.Fatal(err)
	}
	if got.Module != modules.DigestOf(wasm) || got.Ref != pinned || got.Cached {
		t.Fatalf("Pull(%s) = %+v, want module %s, not cached", pinned, got, modules.DigestOf(wasm))
	}
	if _, stored, err := dst.Get(got.Module); err != nil || !bytes.Equal(stored, wasm) {
		t.Fatalf("pulled module in the store: %v (equal bytes %v)", err, bytes.Equal(stored, wasm))
	}
	if m, ok := Cached(dst, pinned.Digest); !ok || m != got.Module {
		t.Fatalf("Cached(%s) = %s, %v; want %s", pinned.Digest, m, ok, got.Module)
	}
	if p, err := c.Pull(ctx, dst, pinned); err != nil || !p.Cached || p.Module != got.Module {
		t.Fatalf("second Pull = %+v, %v; want the cached module", p, err)
	}

	byTag, err := c.Pull(ctx, openStore(t), mustParse(t, "oci://"+reg.Addr+"/wasmesh/hello:v2"))
	if err != nil || byTag.Ref != pinned || byTag.Module != got.Module {
		t.Fatalf("Pull by tag = %+v, %v; want %s as %s", byTag, err, got.Module, pinned)
	}

	_, err = c.Pull(ctx, openStore(t), mustParse(t, "oci://"+reg.Addr+"/wasmesh/hello:nope"))
	if err == nil || !strings.Contains(err.Error(), "oci://"+reg.Addr+"/wasmesh/hello:nope") || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("Pull of a missing tag: %v, want not found naming the reference", err)
	}
	_, err = c.Push(ctx, src, module, pinned)
	if err == nil || !strings.Contains(err.Error(), "not a digest") {
		t.Fatalf("Push to a digest: %v, want refused", err)
	}
}

// TestManifestLayout reads what Push wrote with oras-go as a plain client.
func TestManifestLayout(t *testing.T) {
	reg := testutil.StartRegistry(t)
	component, err := os.ReadFile("../../examples/components/c/hello.wasm")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		tag, os string
		wasm    []byte
	}{
		{"zig", "wasip1", example(t, "zig")},
		{"c-component", "wasip2", component},
	} {
		t.Run(tc.tag, func(t *testing.T) { testManifestLayout(t, reg.Addr, tc.tag, tc.os, tc.wasm) })
	}
}

// testManifestLayout pushes wasm as hello:tag and checks what the registry
// holds: the Wasm OCI artifact layout, with os in the config.
func testManifestLayout(t *testing.T, addr, tag, wantOS string, wasm []byte) {
	ctx := context.Background()
	src := openStore(t)
	pinned, err := client(t, addr).Push(ctx, src, put(t, src, wasm), mustParse(t, "oci://"+addr+"/hello:"+tag))
	if err != nil {
		t.Fatal(err)
	}

	repo, err := remote.NewRepository(addr + "/hello")
	if err != nil {
		t.Fatal(err)
	}
	repo.PlainHTTP = true
	desc, rc, err := repo.FetchReference(ctx, tag)
	if err != nil {
		t.Fatal(err)
	}
	data, err := content.ReadAll(rc, desc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	if desc.MediaType != "application/vnd.oci.image.manifest.v1+json" || desc.Digest.String() != pinned.Digest {
		t.Errorf("tag resolves to %s %s, want an OCI image manifest %s", desc.MediaType, desc.Digest, pinned.Digest)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	if m.SchemaVersion != 2 || m.MediaType != ocispec.MediaTypeImageManifest || m.ArtifactType != "" {
		t.Errorf("manifest schemaVersion %d, mediaType %q, artifactType %q; want 2, %q and none (the config's media type is the artifact type)",
			m.SchemaVersion, m.MediaType, m.ArtifactType, ocispec.MediaTypeImageManifest)
	}
	if m.Config.MediaType != "application/vnd.wasm.config.v0+json" {
		t.Errorf("config media type %q", m.Config.MediaType)
	}
	if len(m.Layers) != 1 || m.Layers[0].MediaType != "application/wasm" || m.Layers[0].Digest.String() != modules.DigestOf(wasm) || m.Layers[0].Size != int64(len(wasm)) {
		t.Fatalf("layers %+v, want one application/wasm layer %s of %d bytes", m.Layers, modules.DigestOf(wasm), len(wasm))
	}
	cfg, err := content.FetchAll(ctx, repo.Blobs(), m.Config)
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(cfg, &c); err != nil {
		t.Fatal(err)
	}
	if c["architecture"] != "wasm" || c["os"] != wantOS || c["created"] != "1970-01-01T00:00:00Z" {
		t.Errorf("config %s: want architecture wasm, os %s, created at the epoch", cfg, wantOS)
	}
	if ld, _ := c["layerDigests"].([]any); len(ld) != 1 || ld[0] != modules.DigestOf(wasm) {
		t.Errorf("config layerDigests %v, want [%s]", c["layerDigests"], modules.DigestOf(wasm))
	}
	layer, err := content.FetchAll(ctx, repo.Blobs(), m.Layers[0])
	if err != nil || !bytes.Equal(layer, wasm) {
		t.Errorf("layer blob: %v, equal to the module: %v", err, bytes.Equal(layer, wasm))
	}
	// And back: pulled into another store, the same bytes.
	dst := openStore(t)
	got, err := client(t, addr).Pull(ctx, dst, mustParse(t, "oci://"+addr+"/hello:"+tag))
	if err != nil || got.Module != modules.DigestOf(wasm) {
		t.Errorf("Pull: %v, module %s, want %s", err, got.Module, modules.DigestOf(wasm))
	}
}

// flipLast returns a response modifier that flips the last byte of the body
// of GET responses whose path ends in suffix.
func flipLast(suffix string) func(*http.Response) error {
	return func(resp *http.Response) error {
		if resp.Request.Method != http.MethodGet || !strings.HasSuffix(resp.Request.URL.Path, suffix) || resp.StatusCode != http.StatusOK {
			return nil
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		if len(body) > 0 {
			body[len(body)-1] ^= 0xff
		}
		resp.Body = io.NopCloser(bytes.NewReader(body))
		return nil
	}
}

// TestTamperedRegistry pulls through a proxy that changes one byte of a
// blob or of the manifest: each is refused and nothing enters the store.
func TestTamperedRegistry(t *testing.T) {
	reg := testutil.StartRegistry(t)
	ctx := context.Background()
	src := openStore(t)
	wasm := example(t, "rust")
	pinned, err := client(t, reg.Addr).Push(ctx, src, put(t, src, wasm), mustParse(t, "oci://"+reg.Addr+"/hello:v1"))
	if err != nil {
		t.Fatal(err)
	}
	cfgBlob, _, _, _ := artifact(wasm, nil)
	for _, tc := range []struct {
		name, suffix, ref, want string
	}{
		{"layer", "/blobs/" + modules.DigestOf(wasm), pinned.Digest, "layer " + modules.DigestOf(wasm) + ": the registry served other bytes"},
		{"config", "/blobs/" + cfgBlob.desc.Digest.String(), pinned.Digest, "config " + cfgBlob.desc.Digest.String() + ": the registry served other bytes"},
		{"manifest by digest", "/manifests/" + pinned.Digest, pinned.Digest, "manifest " + pinned.Digest},
		{"manifest by tag", "/manifests/v1", "v1", "manifest " + pinned.Digest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			proxy := testutil.StartProxy(t, reg.Addr, flipLast(tc.suffix))
			dst := openStore(t)
			ref := Reference{Registry: proxy.Addr, Repository: "hello"}
			if strings.HasPrefix(tc.ref, "sha256:") {
				ref.Digest = tc.ref
			} else {
				ref.Tag = tc.ref
			}
			_, err := client(t, proxy.Addr).Pull(ctx, dst, ref)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), ref.String()) {
				t.Fatalf("Pull through a tampering proxy: %v; want an error naming %s and containing %q", err, ref, tc.want)
			}
			entries(t, dst, 0)
			if _, ok := Cached(dst, pinned.Digest); ok {
				t.Error("the refused manifest is in the index")
			}
			if proxy.Requests.Load() == 0 {
				t.Error("the proxy saw no request")
			}
		})
	}
}

// TestSignaturesTravel pushes a signed and an unsigned module; a store that
// requires signatures accepts the first and refuses the second.
func TestSignaturesTravel(t *testing.T) {
	reg := testutil.StartRegistry(t)
	ctx := context.Background()
	c := client(t, reg.Addr)
	pubPEM, privPEM, err := modules.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	priv, _ := modules.ParsePrivateKey(privPEM)
	pub, _ := modules.ParsePublicKey(pubPEM)

	src := openStore(t)
	signed, unsigned := put(t, src, example(t, "rust")), put(t, src, example(t, "zig"))
	sig, _ := modules.Sign(priv, signed)
	if err := src.AddSignature(signed, pub, sig); err != nil {
		t.Fatal(err)
	}
	signedRef, err := c.Push(ctx, src, signed, mustParse(t, "oci://"+reg.Addr+"/hello:signed"))
	if err != nil {
		t.Fatal(err)
	}
	unsignedRef, err := c.Push(ctx, src, unsigned, mustParse(t, "oci://"+reg.Addr+"/hello:unsigned"))
	if err != nil {
		t.Fatal(err)
	}

	dst := openStore(t)
	if err := dst.SetPolicy(modules.Policy{RequireSigned: true, TrustedKeys: []string{string(pubPEM)}}); err != nil {
		t.Fatal(err)
	}
	got, err := c.Pull(ctx, dst, signedRef)
	if err != nil {
		t.Fatalf("pull of the signed module into a require_signed store: %v", err)
	}
	if got.Signatures != 1 || got.Module != signed {
		t.Errorf("Pull = %+v, want %s with 1 signature", got, signed)
	}
	if _, err := dst.VerifySignature(signed, pub); err != nil {
		t.Errorf("the pulled signature: %v", err)
	}
	_, err = c.Pull(ctx, dst, unsignedRef)
	if !errors.Is(err, modules.ErrUnsigned) || !strings.Contains(err.Error(), unsignedRef.String()) {
		t.Fatalf("pull of the unsigned module into a require_signed store: %v; want ErrUnsigned naming %s", err, unsignedRef)
	}
	if list := entries(t, dst, 1); list[0].Digest != signed || !list[0].Signed {
		t.Errorf("store holds %+v, want only the signed module", list)
	}
	// A module signed by a key the store does not trust is refused, and
	// leaves nothing behind, its signature neither.
	otherPub, otherPriv, _ := modules.GenerateKey()
	opriv, _ := modules.ParsePrivateKey(otherPriv)
	opub, _ := modules.ParsePublicKey(otherPub)
	osig, _ := modules.Sign(opriv, unsigned)
	if err := src.AddSignature(unsigned, opub, osig); err != nil {
		t.Fatal(err)
	}
	untrustedRef, err := c.Push(ctx, src, unsigned, mustParse(t, "oci://"+reg.Addr+"/hello:untrusted"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Pull(ctx, dst, untrustedRef); !errors.Is(err, modules.ErrUnsigned) {
		t.Fatalf("pull of a module signed by an untrusted key: %v", err)
	}
	if sigs, _ := dst.Signatures(unsigned); len(sigs) != 0 {
		t.Errorf("the refused pull left %d signatures in the store", len(sigs))
	}

	// A signature changed in the manifest is refused before anything is stored.
	other := openStore(t)
	bad := append([]byte(nil), sig...)
	bad[0] ^= 1
	if err := other.AddSignature(signed, pub, sig); err != nil {
		t.Fatal(err)
	}
	_, _, manifest, err := artifact(example(t, "rust"), []modules.Signature{{KeyID: modules.KeyID(pub), PublicKey: pub, Sig: bad}})
	if err != nil {
		t.Fatal(err)
	}
	repo, _ := remote.NewRepository(reg.Addr + "/hello")
	repo.PlainHTTP = true
	if err := repo.PushReference(ctx, manifest.desc, bytes.NewReader(manifest.data), "badsig"); err != nil {
		t.Fatal(err)
	}
	_, err = c.Pull(ctx, openStore(t), mustParse(t, "oci://"+reg.Addr+"/hello:badsig"))
	if err == nil || !strings.Contains(err.Error(), "does not verify") {
		t.Fatalf("pull with a forged signature annotation: %v, want refused", err)
	}
}

// configFor is a Wasm config blob for layer with os.
func configFor(layer blob, os string) blob {
	b, _ := json.Marshal(wasmConfig{Architecture: "wasm", OS: os, LayerDigests: []string{layer.desc.Digest.String()}})
	return newBlob(ConfigMediaType, b)
}

// pushManifest pushes m (schema version 2) to repo as tag.
func pushManifest(t *testing.T, repo *remote.Repository, tag string, m ocispec.Manifest) {
	t.Helper()
	m.SchemaVersion = 2
	data, _ := json.Marshal(m)
	b := newBlob(ocispec.MediaTypeImageManifest, data)
	if err := repo.PushReference(context.Background(), b.desc, bytes.NewReader(b.data), tag); err != nil {
		t.Fatal(err)
	}
}

// TestNotWasm refuses manifests of other artifact types.
func TestNotWasm(t *testing.T) {
	reg := testutil.StartRegistry(t)
	ctx := context.Background()
	repo, _ := remote.NewRepository(reg.Addr + "/other")
	repo.PlainHTTP = true
	wasm := example(t, "zig")
	config, layer, _, _ := artifact(wasm, nil)
	wasip2, linux := configFor(layer, "wasip2"), configFor(layer, "linux")
	for _, b := range []blob{config, layer, wasip2, linux} {
		if err := repo.Push(ctx, b.desc, bytes.NewReader(b.data)); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name   string
		change func(m *ocispec.Manifest)
		want   string
	}{
		{"layer type", func(m *ocispec.Manifest) { m.Layers[0].MediaType = "application/octet-stream" }, `layer media type "application/octet-stream", want "application/wasm"`},
		{"config type", func(m *ocispec.Manifest) { m.Config.MediaType = ocispec.MediaTypeImageConfig }, "not a Wasm artifact"},
		{"two layers", func(m *ocispec.Manifest) { m.Layers = append(m.Layers, m.Layers[0]) }, "has 2 layers"},
		{"os of a component for a module", func(m *ocispec.Manifest) { m.Config = wasip2.desc }, `config: os "wasip2", but the layer is for "wasip1"`},
		{"other os", func(m *ocispec.Manifest) { m.Config = linux.desc }, `config: os "linux", want "wasip1"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: config.desc, Layers: []ocispec.Descriptor{layer.desc}}
			tc.change(&m)
			tag := strings.ReplaceAll(tc.name, " ", "-")
			pushManifest(t, repo, tag, m)
			dst := openStore(t)
			_, err := client(t, reg.Addr).Pull(ctx, dst, mustParse(t, "oci://"+reg.Addr+"/other:"+tag))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Pull: %v, want %q", err, tc.want)
			}
			entries(t, dst, 0)
		})
	}
}

// TestDockerConfigCredentials pulls through a proxy that wants basic auth,
// with the credentials in $DOCKER_CONFIG/config.json.
func TestDockerConfigCredentials(t *testing.T) {
	reg := testutil.StartRegistry(t)
	ctx := context.Background()
	src := openStore(t)
	pinned, err := client(t, reg.Addr).Push(ctx, src, put(t, src, example(t, "zig")), mustParse(t, "oci://"+reg.Addr+"/hello:v1"))
	if err != nil {
		t.Fatal(err)
	}
	var authorized, refused int
	var mu sync.Mutex
	proxy := testutil.StartProxy(t, reg.Addr, func(resp *http.Response) error {
		mu.Lock()
		defer mu.Unlock()
		if u, p, ok := resp.Request.BasicAuth(); ok && u == "ann" && p == "s3cret" {
			authorized++
			return nil
		}
		refused++
		resp.StatusCode, resp.Status = http.StatusUnauthorized, "401 Unauthorized"
		resp.Header.Set("WWW-Authenticate", `Basic realm="test"`)
		resp.Body = io.NopCloser(strings.NewReader(`{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`))
		resp.ContentLength = -1
		resp.Header.Del("Content-Length")
		resp.Header.Del("Docker-Content-Digest")
		return nil
	})
	ref := Reference{Registry: proxy.Addr, Repository: "hello", Digest: pinned.Digest}

	dir := t.TempDir()
	t.Setenv("DOCKER_CONFIG", dir)
	anon, err := New(Options{PlainHTTP: []string{proxy.Addr}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := anon.Pull(ctx, openStore(t), ref); err == nil || !strings.Contains(err.Error(), "credential not found") {
		t.Fatalf("pull without credentials: %v, want refused for want of credentials", err)
	}
	cfg := `{"auths":{"` + proxy.Addr + `":{"auth":"` + base64.StdEncoding.EncodeToString([]byte("ann:s3cret")) + `"}}}`
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	withCreds, err := New(Options{PlainHTTP: []string{proxy.Addr}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := withCreds.Pull(ctx, openStore(t), ref); err != nil {
		t.Fatalf("pull with $DOCKER_CONFIG/config.json credentials: %v", err)
	}
	if authorized == 0 || refused == 0 {
		t.Errorf("proxy saw %d authorized and %d refused requests, want both", authorized, refused)
	}
}

// TestHTTPSByDefault: a registry not listed as plain HTTP is reached over
// TLS, which a plain-HTTP registry does not speak.
func TestHTTPSByDefault(t *testing.T) {
	reg := testutil.StartRegistry(t)
	_, err := client(t).Pull(context.Background(), openStore(t), mustParse(t, "oci://"+reg.Addr+"/hello:v1"))
	if err == nil || !strings.Contains(err.Error(), "https://"+reg.Addr) {
		t.Fatalf("pull without plain HTTP: %v, want an HTTPS request that fails", err)
	}
}

// FuzzManifest: whatever a registry sends as a manifest or a config, the
// checks return an answer or an error and never panic; a manifest they
// accept has one application/wasm layer and sha256 digests.
func FuzzManifest(f *testing.F) {
	for _, lang := range []string{"zig", "rust"} {
		wasm, err := os.ReadFile(filepath.Join("..", "..", "examples", "hello", lang, "hello.wasm"))
		if err != nil {
			f.Fatal(err)
		}
		config, _, manifest, err := artifact(wasm, nil)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(manifest.data, config.data)
	}
	f.Fuzz(func(t *testing.T, manifest, config []byte) {
		m, err := parseManifest(manifest)
		if err != nil {
			return
		}
		if len(m.Layers) != 1 || m.Layers[0].MediaType != LayerMediaType || m.Layers[0].Digest.Algorithm() != "sha256" || m.Config.Digest.Algorithm() != "sha256" {
			t.Fatalf("accepted %+v", m)
		}
		_, _ = signatures(m.Annotations)
		if os, err := checkConfig(config, m.Layers[0]); err == nil && os != "wasip1" && os != "wasip2" {
			t.Fatalf("config accepted with os %q", os)
		}
	})
}

// TestOldComponentArtifact: a component pushed by a wasmesh that wrote
// os wasip1 for every layer is still pulled.
func TestOldComponentArtifact(t *testing.T) {
	reg := testutil.StartRegistry(t)
	ctx := context.Background()
	repo, _ := remote.NewRepository(reg.Addr + "/old")
	repo.PlainHTTP = true
	wasm, err := os.ReadFile("../../examples/components/c/hello.wasm")
	if err != nil {
		t.Fatal(err)
	}
	_, layer, _, _ := artifact(wasm, nil)
	config := configFor(layer, "wasip1")
	for _, b := range []blob{config, layer} {
		if err := repo.Push(ctx, b.desc, bytes.NewReader(b.data)); err != nil {
			t.Fatal(err)
		}
	}
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: config.desc, Layers: []ocispec.Descriptor{layer.desc}}
	pushManifest(t, repo, "c", m)
	got, err := client(t, reg.Addr).Pull(ctx, openStore(t), mustParse(t, "oci://"+reg.Addr+"/old:c"))
	if err != nil || got.Module != modules.DigestOf(wasm) {
		t.Fatalf("Pull: %v, %s", err, got.Module)
	}
}
