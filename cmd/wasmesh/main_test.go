package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// TestUsageDocumented checks that docs/cli.md opens with the usage the
// program prints, so that a command added or renamed is documented.
func TestUsageDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/cli.md")
	if err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	usage(&got)
	_, block, ok := strings.Cut(string(doc), "```\n")
	if ok {
		block, _, ok = strings.Cut(block, "```\n")
	}
	if !ok {
		t.Fatal("docs/cli.md: no fenced block with the usage")
	}
	if block != got.String() {
		t.Errorf("docs/cli.md's usage block differs from the program's; the program prints:\n%s\ndocs/cli.md has:\n%s", got.String(), block)
	}
}
