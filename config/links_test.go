package config

import (
	"strings"
	"testing"
)

func TestLinksField(t *testing.T) {
	const head = "services:\n  crypto: { versions: [ { path: h.wasm } ] }\n  front:\n    versions: [ { path: c.wasm } ]\n    links: "
	cfg := mustParse(t, head+`{ "example:crypto/hash@0.1.0": crypto, "example:crypto/other": crypto }`+"\n")
	if got := cfg.Services["front"].Links; len(got) != 2 || got["example:crypto/hash@0.1.0"] != "crypto" {
		t.Fatalf("links: %v", got)
	}
	for _, tt := range []struct{ links, want string }{
		{`{ "example:crypto/hash": crypt }`, `services.front.links["example:crypto/hash"]: unknown service "crypt" (did you mean "crypto"?)`},
		{`{ "crypto-hash": crypto }`, `"crypto-hash" is not a WIT interface`},
		{`{ "example:crypto/hash": "not a name" }`, `"not a name" is not a service name`},
		{`{ "example:crypto/hash": crypto, "example:crypto/hash@0.1.0": crypto }`, `"example:crypto/hash" and "example:crypto/hash@0.1.0" both name example:crypto/hash`},
	} {
		_, err := Parse("wasmesh.yaml", []byte(head+tt.links+"\n"))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", tt.links, err, tt.want)
		}
	}
}
