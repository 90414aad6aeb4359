package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

var sizeUnits = map[string]int64{
	"": 1, "B": 1,
	"KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12,
	"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40,
}

// ParseSize parses a byte size: a non-negative integer followed by an
// optional unit, with an optional space between. Units are B, KiB, MiB, GiB,
// TiB (powers of 1024) and KB, MB, GB, TB (powers of 1000), case-sensitive.
// "65536" is 65536 bytes; "32MiB" is 33554432; "64MB" is 64000000.
func ParseSize(s string) (int64, error) {
	num := strings.TrimRightFunc(s, func(r rune) bool { return r < '0' || r > '9' })
	unit := strings.TrimPrefix(s[len(num):], " ")
	mult, ok := sizeUnits[unit]
	switch {
	case num == "":
		return 0, fmt.Errorf("invalid size %q: want a number of bytes like 65536 or 32MiB", s)
	case !ok:
		return 0, fmt.Errorf("invalid size %q: unknown unit %q (want B, KB, MB, GB, TB, KiB, MiB, GiB or TiB)", s, unit)
	}
	n, err := strconv.ParseUint(num, 10, 63)
	if err != nil || n > uint64(math.MaxInt64/mult) {
		return 0, fmt.Errorf("invalid size %q: want a whole number of bytes below 2^63", s)
	}
	return int64(n) * mult, nil
}
