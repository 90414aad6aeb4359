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
	// Never overwrite a key someone may depend on: the public one either
	// (its private key moved off the host, it is what stores trust).
	if _, err := os.Lstat(*out + ".pub"); err == nil {
		return fmt.Errorf("%s.pub exists: key gen never overwrites a key (--out names another)", *out)
	}
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
	pf, err := os.OpenFile(*out+".pub", os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err == nil {
		_, err = pf.Write(pubPEM)
		if cerr := pf.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		os.Remove(*out + ".key") // made just now: no half pair left behind
		return err
	}
	pub, _ := modules.ParsePublicKey(pubPEM)
	fmt.Fprintf(stdout, "wrote %s.key and %s.pub (key id %s)\n", *out, *out, modules.KeyID(pub))
	return nil
}
