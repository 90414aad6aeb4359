package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/wasmesh/wasmesh/host"
	"github.com/wasmesh/wasmesh/internal/wasmbin"
	"github.com/wasmesh/wasmesh/modules"
	"github.com/wasmesh/wasmesh/modules/oci"
)

func artifactCmd(ctx context.Context, args []string, stdout io.Writer) error {
	subs := map[string]func(context.Context, []string, io.Writer) error{
		"push": artifactPush, "ls": artifactList, "inspect": artifactInspect, "rm": artifactRemove,
		"verify": artifactVerify, "sign": artifactSign, "policy": artifactPolicy, "pull": artifactPull,
	}
	return subcommands(ctx, "artifact", "", []string{"push", "pull", "ls", "inspect", "rm", "verify", "sign", "policy"}, subs, args, stdout)
}

// openStore opens the store, validating pushes by compiling them.
func openStore(ctx context.Context, dir string) (*modules.Store, func(), error) {
	eng, err := host.New(ctx, host.Options{CacheDir: defaultCacheDir()})
	if err != nil {
		return nil, nil, err
	}
	s, err := modules.Open(dir, modules.Options{Validate: eng.Validate})
	if err != nil {
		eng.Close(ctx)
		return nil, nil, err
	}
	return s, func() { eng.Close(context.Background()) }, nil
}

func artifactPush(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("artifact push", "FILE.wasm... | FILE.wasm|DIGEST oci://REGISTRY/REPOSITORY[:TAG]")
	store := storeFlag(fs)
	plainHTTP := fs.Bool("plain-http", false, "reach the registry over plain HTTP instead of HTTPS")
	files, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return usageError("no file given: wasmesh artifact push FILE.wasm...")
	}
	toRegistry := slices.ContainsFunc(files, oci.IsReference)
	if toRegistry && (len(files) != 2 || !oci.IsReference(files[1])) {
		return usageError("want one module and one registry reference: wasmesh artifact push FILE.wasm|DIGEST oci://REGISTRY/REPOSITORY:TAG")
	}
	if *plainHTTP && !toRegistry {
		return usageError("--plain-http needs an oci:// reference")
	}
	s, done, err := openStore(ctx, *store)
	if err != nil {
		return err
	}
	defer done()
	if toRegistry {
		return pushToRegistry(ctx, s, files[0], files[1], *plainHTTP, stdout)
	}
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			return exitWith(2, unwrapOpen(name, err))
		}
		digest, err := s.Put(ctx, f)
		f.Close()
		switch {
		case errors.Is(err, modules.ErrWrite):
			return fmt.Errorf("%s: %w", name, err) // the store's failure: exit 1
		case err != nil:
			return exitWith(2, fmt.Errorf("%s: %w", name, err))
		}
		fmt.Fprintln(stdout, digest)
	}
	return nil
}

// pushToRegistry puts a file into the local store (or resolves a digest in
// it), then pushes the module and its signatures to the registry, printing
// the manifest's pinned reference.
func pushToRegistry(ctx context.Context, s *modules.Store, src, dst string, plainHTTP bool, stdout io.Writer) error {
	ref, err := oci.ParseReference(dst)
	if err != nil {
		return usageError("%v", err)
	}
	if ref.Digest != "" {
		return usageError("push to %s: name a tag, not a digest: the registry computes the manifest's digest", ref)
	}
	digest, err := putOrResolve(ctx, s, src)
	if err != nil {
		return err
	}
	c, err := ociClient(ref, plainHTTP)
	if err != nil {
		return err
	}
	pinned, err := c.Push(ctx, s, digest, ref)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, pinned)
	return nil
}

// putOrResolve returns the digest of a module named by a file (put into the
// store first) or by a digest in the store.
func putOrResolve(ctx context.Context, s *modules.Store, src string) (string, error) {
	f, err := os.Open(src)
	if err != nil {
		if !modules.IsDigest(src) {
			return "", exitWith(2, unwrapOpen(src, err))
		}
		d, err := s.Resolve(src)
		if err != nil {
			return "", exitWith(2, err)
		}
		return d, nil
	}
	defer f.Close()
	d, err := s.Put(ctx, f)
	if err != nil {
		return "", exitWith(2, fmt.Errorf("%s: %w", src, err))
	}
	return d, nil
}

func ociClient(ref oci.Reference, plainHTTP bool) (*oci.Client, error) {
	var opts oci.Options
	if plainHTTP {
		opts.PlainHTTP = []string{ref.Registry}
	}
	return oci.New(opts)
}

// artifactPull pulls a module from a registry into the store and prints its
// digest.
func artifactPull(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("artifact pull", "oci://REGISTRY/REPOSITORY@sha256:DIGEST|:TAG")
	store := storeFlag(fs)
	plainHTTP := fs.Bool("plain-http", false, "reach the registry over plain HTTP instead of HTTPS")
	timeout := fs.Duration("timeout", 5*time.Minute, "give up on a registry that has not answered the whole pull by then")
	refs, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(refs) != 1 {
		return usageError("want one reference: wasmesh artifact pull oci://REGISTRY/REPOSITORY@sha256:DIGEST")
	}
	if *timeout <= 0 {
		return usageError("--timeout %s: want a positive duration", *timeout)
	}
	ref, err := oci.ParseReference(refs[0])
	if err != nil {
		return usageError("%v", err)
	}
	if ref.Tag == "" && ref.Digest == "" {
		return usageError("%s: name a tag or a digest", ref)
	}
	s, done, err := openStore(ctx, *store)
	if err != nil {
		return err
	}
	defer done()
	c, err := ociClient(ref, *plainHTTP)
	if err != nil {
		return err
	}
	pullCtx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	got, err := c.Pull(pullCtx, s, ref)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			return fmt.Errorf("%w (the registry did not answer the whole pull within --timeout %s)", err, *timeout)
		}
		return err
	}
	fmt.Fprintln(stdout, got.Module)
	return nil
}

func unwrapOpen(name string, err error) error { return fmt.Errorf("%s: %w", name, unwrapPath(err)) }

func artifactList(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("artifact ls", "[-o json]")
	store := storeFlag(fs)
	output := outputFlag(fs, "table", "json")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	s, err := modules.OpenExisting(*store, modules.Options{})
	if err != nil {
		return err
	}
	entries, err := s.List()
	if err != nil {
		return err
	}
	if *output == "json" {
		return writeJSON(stdout, entries)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DIGEST\tSIZE\tLANGUAGE\tWASI\tIMPORTS\tSIGNED\tPUSHED")
	for _, e := range entries {
		fmt.Fprintf(tw, "sha256:%s\t%s\t%s\t%s\t%s\t%v\t%s\n", modules.Short(e.Digest), humanBytes(e.Size),
			dash(e.Language), dash(e.WASI), dash(strings.Join(e.Imports, ",")), e.Signed, e.PushedAt.Local().Format(time.DateTime))
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1fMiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1fKiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%dB", n)
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func artifactInspect(_ context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("artifact inspect", "DIGEST [-o json]")
	store := storeFlag(fs)
	output := outputFlag(fs, "text", "json")
	refs, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(refs) != 1 {
		return usageError("want one digest: wasmesh artifact inspect DIGEST")
	}
	s, err := modules.OpenExisting(*store, modules.Options{})
	if err != nil {
		return err
	}
	in, err := s.Inspect(refs[0])
	if err != nil {
		return err
	}
	if *output == "json" {
		return writeJSON(stdout, in)
	}
	m := in.Module
	fmt.Fprintf(stdout, "digest:    %s\nsize:      %d bytes\nlanguage:  %s\nwasi:      %s\nsigned:    %v\npushed:    %s\n",
		in.Digest, in.Size, dash(in.Language), dash(in.WASI), in.Signed, in.PushedAt.Format(time.RFC3339))
	if in.Reusable {
		fmt.Fprintf(stdout, "reusable:  yes (instances are reset and reused)\n")
	} else {
		fmt.Fprintf(stdout, "reusable:  no: %s\n", in.NotReusable)
	}
	if in.Component != nil {
		fmt.Fprintf(stdout, "kind:      component (WASI 0.2 component model)\nserves as: %s\nimports:   %s\n", in.Component.Role(), strings.Join(in.Imports, ", "))
		_, err := in.Component.WriteTo(stdout)
		return err
	}
	printModule(stdout, m)
	return nil
}

// printModule writes a core module's memories, imports, exports, custom
// sections and producers.
func printModule(stdout io.Writer, m *wasmbin.Info) {
	for _, mem := range m.Memories {
		max := "unbounded"
		if mem.Max >= 0 {
			max = fmt.Sprint(mem.Max)
		}
		fmt.Fprintf(stdout, "memory:    min %d pages (%s), max %s%s\n", mem.Min, humanBytes(int64(mem.Min)<<16), max, map[bool]string{true: ", imported"}[mem.Imported])
	}
	fmt.Fprintf(stdout, "imports (%d):\n", len(m.Imports))
	for _, imp := range m.Imports {
		fmt.Fprintf(stdout, "  %-6s %s.%s\n", imp.Kind, imp.Module, imp.Name)
	}
	fmt.Fprintf(stdout, "exports (%d):\n", len(m.Exports))
	for _, e := range m.Exports {
		fmt.Fprintf(stdout, "  %-6s %s\n", e.Kind, e.Name)
	}
	fmt.Fprintf(stdout, "custom sections (%d):\n", len(m.CustomSections))
	for _, c := range m.CustomSections {
		fmt.Fprintf(stdout, "  %-24s %d bytes\n", c.Name, c.Size)
	}
	for field, tools := range m.Producers {
		fmt.Fprintf(stdout, "producers.%s: %s\n", field, strings.Join(tools, ", "))
	}
}

func artifactRemove(_ context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("artifact rm", "DIGEST... [--force]")
	store := storeFlag(fs)
	force := fs.Bool("force", false, "remove even if a gateway config references it")
	refs, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(refs) == 0 {
		return usageError("want a digest: wasmesh artifact rm DIGEST...")
	}
	s, err := modules.OpenExisting(*store, modules.Options{})
	if err != nil {
		return err
	}
	for _, ref := range refs {
		digest, err := s.Remove(ref, *force)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "removed %s\n", digest)
	}
	return nil
}

// artifactVerify re-hashes the whole store, or with --pub checks one
// artifact's signature by that key.
func artifactVerify(_ context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("artifact verify", "[DIGEST --pub KEY.pub]")
	store := storeFlag(fs)
	pubFile := fs.String("pub", "", "public key (PEM) whose signature to check")
	refs, err := parse(fs, args)
	if err != nil {
		return err
	}
	s, err := modules.OpenExisting(*store, modules.Options{})
	if err != nil {
		return err
	}
	if len(refs) > 0 || *pubFile != "" {
		if len(refs) != 1 || *pubFile == "" {
			return usageError("want one digest and --pub: wasmesh artifact verify DIGEST --pub KEY.pub")
		}
		pub, err := readPublicKey(*pubFile)
		if err != nil {
			return err
		}
		digest, err := s.VerifySignature(refs[0], pub)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: signature by key %s OK\n", digest, modules.KeyID(pub))
		return nil
	}
	entries, err := s.List()
	if err != nil {
		return err
	}
	problems, err := s.Verify()
	if err != nil {
		return err
	}
	for _, p := range problems {
		fmt.Fprintf(stdout, "%s: %s\n", p.Digest, p.Err)
	}
	if len(problems) > 0 {
		return fmt.Errorf("%d of %d artifacts failed verification", len(problems), len(entries))
	}
	fmt.Fprintf(stdout, "%d artifacts OK\n", len(entries))
	return nil
}

// artifactSign signs a stored digest, or a file's digest before it is pushed.
func artifactSign(_ context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("artifact sign", "DIGEST|FILE.wasm --key KEY")
	store := storeFlag(fs)
	keyFile := fs.String("key", "", "private key (PEM) to sign with")
	refs, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(refs) != 1 || *keyFile == "" {
		return usageError("want one digest or file and --key: wasmesh artifact sign DIGEST --key KEY")
	}
	data, err := os.ReadFile(*keyFile)
	if err != nil {
		return exitWith(2, unwrapOpen(*keyFile, err))
	}
	priv, err := modules.ParsePrivateKey(data)
	if err != nil {
		return exitWith(2, fmt.Errorf("%s: %w", *keyFile, err))
	}
	s, err := modules.Open(*store, modules.Options{})
	if err != nil {
		return err
	}
	digest, err := digestOf(s, refs[0])
	if err != nil {
		return err
	}
	sig, err := modules.Sign(priv, digest)
	if err != nil {
		return err
	}
	if err := s.AddSignature(digest, priv.Public().(ed25519PublicKey), sig); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "signed %s with key %s\n", digest, modules.KeyID(priv.Public().(ed25519PublicKey)))
	return nil
}

// digestOf returns the digest of a file, or resolves a digest in the store.
func digestOf(s *modules.Store, ref string) (string, error) {
	wasm, err := modules.ReadFile(ref)
	if err == nil {
		return modules.DigestOf(wasm), nil
	}
	if !modules.IsDigest(ref) {
		return "", unwrapOpen(ref, err)
	}
	return s.Resolve(ref)
}

func readPublicKey(path string) (ed25519PublicKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, exitWith(2, unwrapOpen(path, err))
	}
	pub, err := modules.ParsePublicKey(data)
	if err != nil {
		return nil, exitWith(2, fmt.Errorf("%s: %w", path, err))
	}
	return pub, nil
}

// artifactPolicy shows or changes the store's signature policy.
func artifactPolicy(_ context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("artifact policy", "[--require-signed=true|false] [--trust KEY.pub]...")
	store := storeFlag(fs)
	var trust listFlag
	fs.Var(&trust, "trust", "add a trusted public key (PEM) (repeatable)")
	var require optionalBool
	fs.Var(&require, "require-signed", "refuse unsigned artifacts at push and run")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	s, err := modules.Open(*store, modules.Options{})
	if err != nil {
		return err
	}
	p, err := s.Policy()
	if err != nil {
		return err
	}
	if require.set || len(trust) > 0 {
		for _, path := range trust {
			pub, err := readPublicKey(path)
			if err != nil {
				return err
			}
			if !trusted(p, pub) {
				data, _ := os.ReadFile(path)
				p.TrustedKeys = append(p.TrustedKeys, string(data))
			}
		}
		if require.set {
			p.RequireSigned = require.value
		}
		if err := s.SetPolicy(p); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "require_signed: %v\n", p.RequireSigned)
	for _, k := range p.TrustedKeys {
		pub, err := modules.ParsePublicKey([]byte(k))
		if err != nil {
			return errors.New("policy.json holds an unreadable key")
		}
		fmt.Fprintf(stdout, "trusted key:    %s\n", modules.KeyID(pub))
	}
	return nil
}

// optionalBool is a bool flag that knows whether it was given.
type optionalBool struct{ set, value bool }

func (b *optionalBool) String() string   { return fmt.Sprint(b.value) }
func (b *optionalBool) IsBoolFlag() bool { return true }
func (b *optionalBool) Set(s string) error {
	switch s {
	case "true", "1":
		b.value = true
	case "false", "0":
		b.value = false
	default:
		return fmt.Errorf("want true or false, got %q", s)
	}
	b.set = true
	return nil
}

// trusted reports whether p already trusts pub.
func trusted(p modules.Policy, pub ed25519PublicKey) bool {
	for _, k := range p.TrustedKeys {
		if have, err := modules.ParsePublicKey([]byte(k)); err == nil && have.Equal(pub) {
			return true
		}
	}
	return false
}
