package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/wasmesh/wasmesh/modules"
)

type ed25519PublicKey = ed25519.PublicKey

func keyCmd(ctx context.Context, args []string, stdout io.Writer) error {
	return subcommands(ctx, "key", "", []string{"gen"}, map[string]func(context.Context, []string, io.Writer) error{"gen": keyGen}, args, stdout)
}

// keyGen is `wasmesh key gen`.
func keyGen(_ context.Context, args []string, stdout io.Writer) error {
	flags := newFlags("key gen", "--out NAME")
	out := flags.String("out", "wasmesh", "write NAME.key (private, mode 0600) and NAME.pub")
	pos, err := parse(flags, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError("no arguments wanted but --out NAME, got %q", pos)
	}
	pubPEM, privPEM, err := modules.GenerateKey()
	if err != nil {
		return err
	}
	// O_EXCL: never overwrite a key someone may depend on.
	f, err := os.OpenFile(*out+".key", os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%s.key exists: key gen never overwrites a key (--out names another)", *out)
	}
	if err != nil {
		return err
	}
	if _, err := f.Write(privPEM); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.WriteFile(*out+".pub", pubPEM, 0o644); err != nil {
		return err
	}
	pub, _ := modules.ParsePublicKey(pubPEM)
	fmt.Fprintf(stdout, "wrote %s.key and %s.pub (key id %s)\n", *out, *out, modules.KeyID(pub))
	return nil
}
