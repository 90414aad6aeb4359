package main

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"os"

	"github.com/wasmesh/wasmesh/modules"
)

type ed25519PublicKey = ed25519.PublicKey

func keyCmd(ctx context.Context, args []string, stdout io.Writer) error {
	return subcommands(ctx, "key", "", []string{"gen"}, map[string]func(context.Context, []string, io.Writer) error{"gen": keyGen}, args, stdout)
}

// keyGen is `wasmesh key gen`.
func keyGen(_ context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("key gen", "--out NAME")
	out := fs.String("out", "wasmesh", "write NAME.key (private, mode 0600) and NAME.pub")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	pubPEM, privPEM, err := modules.GenerateKey()
	if err != nil {
		return err
	}
	// O_EXCL: never overwrite a key someone may depend on.
	f, err := os.OpenFile(*out+".key", os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
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
