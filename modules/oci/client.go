package oci

import (
	"bytes"
	"cmp"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/credentials"

	"github.com/wasmesh/wasmesh/modules"
)

// Options configure a Client.
type Options struct {
	// PlainHTTP lists the registries (host[:port], as written in references)
	// to reach over plain HTTP. Default none: every registry over HTTPS,
	// verified against the system's roots.
	PlainHTTP []string
	// DockerConfig is the Docker config file whose credentials (and
	// credential helpers) are used. Default "": $DOCKER_CONFIG/config.json
	// when DOCKER_CONFIG is set, else ~/.docker/config.json. A missing file
	// means anonymous access.
	DockerConfig string
	// Transport sends the requests. Default http.DefaultTransport.
	Transport http.RoundTripper
}

// Client pushes and pulls modules. It is safe for concurrent use.
type Client struct {
	opts Options
	auth *auth.Client
}

// New returns a client, reading the Docker config file's location (not yet
// its credentials, which are read at each request).
func New(opts Options) (*Client, error) {
	var store credentials.Store
	var err error
	if opts.DockerConfig != "" {
		store, err = credentials.NewStore(opts.DockerConfig, credentials.StoreOptions{})
	} else {
		store, err = credentials.NewStoreFromDocker(credentials.StoreOptions{})
	}
	if err != nil {
		return nil, fmt.Errorf("registry credentials: %w", err)
	}
	if opts.Transport == nil {
		opts.Transport = http.DefaultTransport
	}
	c := &auth.Client{
		Client:     &http.Client{Transport: opts.Transport},
		Header:     http.Header{"User-Agent": {"wasmesh"}},
		Cache:      auth.NewCache(),
		Credential: credentials.Credential(store),
	}
	return &Client{opts: opts, auth: c}, nil
}

func (c *Client) repository(ref Reference) *remote.Repository {
	return &remote.Repository{
		Client:    c.auth,
		Reference: registry.Reference{Registry: ref.Registry, Repository: ref.Repository},
		PlainHTTP: slices.Contains(c.opts.PlainHTTP, ref.Registry),
	}
}

// Push pushes the stored module digest, with the signatures the store has
// for it, to ref (a tag, or no reference at all for an untagged push), and
// returns ref pinned to the manifest's digest. The module is read with
// [modules.Store.Get], so it is re-hashed and the store's policy applies.
// Signatures whose public key the store does not know, or that do not
// verify, are left out.
func (c *Client) Push(ctx context.Context, store *modules.Store, module string, ref Reference) (Reference, error) {
	if ref.Digest != "" {
		return Reference{}, fmt.Errorf("push to %s: name a tag, not a digest: the registry computes the manifest's digest", ref)
	}
	module, wasm, err := store.Get(module)
	if err != nil {
		return Reference{}, err
	}
	stored, err := store.Signatures(module)
	if err != nil {
		return Reference{}, err
	}
	var sigs []modules.Signature
	for _, s := range stored {
		if s.PublicKey != nil && ed25519.Verify(s.PublicKey, []byte(module), s.Sig) {
			sigs = append(sigs, s)
		}
	}
	config, layer, manifest, err := artifact(wasm, sigs)
	if err != nil {
		return Reference{}, fmt.Errorf("push to %s: %w", ref, err)
	}
	repo := c.repository(ref)
	for _, b := range []blob{layer, config} {
		if ok, err := repo.Blobs().Exists(ctx, b.desc); err != nil {
			return Reference{}, fmt.Errorf("push to %s: %s blob %s: %w", ref, b.desc.MediaType, b.desc.Digest, err)
		} else if ok {
			continue
		}
		if err := repo.Blobs().Push(ctx, b.desc, bytes.NewReader(b.data)); err != nil {
			return Reference{}, fmt.Errorf("push to %s: %s blob %s: %w", ref, b.desc.MediaType, b.desc.Digest, err)
		}
	}
	if ref.Tag != "" {
		err = repo.Manifests().PushReference(ctx, manifest.desc, bytes.NewReader(manifest.data), ref.Tag)
	} else {
		err = repo.Manifests().Push(ctx, manifest.desc, bytes.NewReader(manifest.data))
	}
	if err != nil {
		return Reference{}, fmt.Errorf("push to %s: manifest: %w", ref, err)
	}
	return ref.WithDigest(manifest.desc.Digest.String()), nil
}

// Pulled is what Pull brought into the store.
type Pulled struct {
	// Ref is the reference pinned to the manifest's digest.
	Ref Reference
	// Module is the module's digest in the store: the sha256 of the wasm.
	Module string
	// Signatures is how many signatures came with it.
	Signatures int
	// Cached is true when the manifest had been pulled before and the
	// registry was not asked.
	Cached bool
}

// Pull fetches the artifact ref names, verifies every part of it against its
// digest, stores its signatures and then the module (so the store's
// validation and policy decide), and records the manifest's digest in the
// store's index. A pinned reference already in the index is not fetched
// again while its module is still in the store and passes the policy.
// Nothing enters the store unless every digest matched.
func (c *Client) Pull(ctx context.Context, store *modules.Store, ref Reference) (Pulled, error) {
	if ref.Pinned() {
		if module, ok := Cached(store, ref.Digest); ok {
			if _, _, err := store.Get(module); err == nil {
				return Pulled{Ref: ref, Module: module, Cached: true}, nil
			}
		}
	}
	if ref.Target() == "" {
		return Pulled{}, fmt.Errorf("pull %s: name a tag or a digest", ref)
	}
	p, err := c.pull(ctx, store, ref)
	if err != nil {
		return Pulled{}, fmt.Errorf("pull %s: %w", ref, err)
	}
	return p, nil
}

func (c *Client) pull(ctx context.Context, store *modules.Store, ref Reference) (Pulled, error) {
	repo := c.repository(ref)
	desc, rc, err := repo.Manifests().FetchReference(ctx, ref.Target())
	if errors.Is(err, errdef.ErrNotFound) {
		err = errdef.ErrNotFound // without the reference, which the caller's error names
	}
	if err != nil {
		return Pulled{}, fmt.Errorf("fetch manifest: %w", err)
	}
	defer rc.Close()
	if desc.Size > maxManifestSize {
		return Pulled{}, fmt.Errorf("manifest of %d bytes is larger than %d", desc.Size, maxManifestSize)
	}
	if desc.MediaType != ManifestMediaType {
		return Pulled{}, fmt.Errorf("manifest media type %q, want %q", desc.MediaType, ManifestMediaType)
	}
	// ReadAll checks the size and the digest: the reference's digest when
	// pinned (FetchReference refuses a registry that announces another),
	// else the one the registry announced for the tag.
	data, err := content.ReadAll(rc, desc)
	if err != nil {
		return Pulled{}, fmt.Errorf("manifest %s: %w", desc.Digest, err)
	}
	if got := digest.FromBytes(data); got != desc.Digest || (ref.Pinned() && got.String() != ref.Digest) {
		return Pulled{}, fmt.Errorf("manifest: its bytes hash to %s, want %s", got, cmp.Or(ref.Digest, desc.Digest.String()))
	}
	m, err := parseManifest(data)
	if err != nil {
		return Pulled{}, err
	}
	sigs, err := signatures(m.Annotations)
	if err != nil {
		return Pulled{}, err
	}
	cfg, err := fetch(ctx, repo, m.Config)
	if err != nil {
		return Pulled{}, err
	}
	layerOS, err := checkConfig(cfg, m.Layers[0])
	if err != nil {
		return Pulled{}, err
	}
	wasm, err := fetch(ctx, repo, m.Layers[0])
	if err != nil {
		return Pulled{}, err
	}
	module := modules.DigestOf(wasm)
	if module != m.Layers[0].Digest.String() {
		return Pulled{}, fmt.Errorf("layer: its bytes hash to %s, want %s", module, m.Layers[0].Digest)
	}
	// A core module said to be a component is refused; a component said
	// to be wasip1 is what wasmesh pushed before it wrote wasip2.
	if got := osOf(wasm); got != layerOS && got != "wasip2" {
		return Pulled{}, fmt.Errorf("config: os %q, but the layer is for %q", layerOS, got)
	}
	// Signatures first: Put applies the policy, which may need them. Those
	// not stored before are taken out again if the module is refused.
	had := map[string]bool{}
	if old, err := store.Signatures(module); err == nil {
		for _, s := range old {
			had[s.KeyID] = true
		}
	}
	var added []string
	undo := func() {
		for _, id := range added {
			_ = store.RemoveSignature(module, id)
		}
	}
	for _, s := range sigs {
		if err := store.AddSignature(module, s.PublicKey, s.Sig); err != nil {
			undo()
			return Pulled{}, fmt.Errorf("annotation %s%s: %w", SignatureAnnotation, s.KeyID, err)
		}
		if !had[s.KeyID] {
			added = append(added, s.KeyID)
		}
	}
	if _, err := store.PutBytes(ctx, wasm); err != nil {
		undo()
		return Pulled{}, err
	}
	pinned := ref.WithDigest(desc.Digest.String())
	if err := record(store, pinned.Digest, module); err != nil {
		return Pulled{}, fmt.Errorf("record %s in the store's index: %w", pinned.Digest, err)
	}
	return Pulled{Ref: pinned, Module: module, Signatures: len(sigs)}, nil
}

// fetch reads a blob and checks its size and digest against desc.
func fetch(ctx context.Context, repo *remote.Repository, desc ocispec.Descriptor) ([]byte, error) {
	data, err := content.FetchAll(ctx, repo.Blobs(), desc)
	if err != nil {
		what := "layer"
		if desc.MediaType == ConfigMediaType {
			what = "config"
		}
		if errors.Is(err, content.ErrMismatchedDigest) {
			return nil, fmt.Errorf("%s %s: the registry served other bytes: %w", what, desc.Digest, err)
		}
		return nil, fmt.Errorf("%s %s: %w", what, desc.Digest, err)
	}
	return data, nil
}
