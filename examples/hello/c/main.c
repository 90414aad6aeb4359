// Build (from this directory), with Zig's clang and wasi-libc:
//   python3 -m ziglang cc -target wasm32-wasi -Os -s -Wl,-z,stack-size=65536 main.c -o hello.wasm
//
// A wasmesh guest: the request arrives CGI-style (RFC 3875) as environment
// variables plus the body on stdin; the response is CGI headers, a blank
// line and the body on stdout.
//
// Everything lives in static buffers. wasi-libc's getenv builds environ
// with malloc, and its malloc grows memory on every first allocation of a
// run; a run that grows memory costs the gateway a new instance for the
// next request (docs/abi.md, "Reused instances"). So the environment is
// read straight from WASI, and stdout is written with write(2).
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <wasi/api.h>

static char env_buf[64 << 10];
static char *env[1024];

// lookup returns the value of name in the environment, or "".
static const char *lookup(size_t count, const char *name) {
	size_t n = strlen(name);
	for (size_t i = 0; i < count; i++) {
		if (strncmp(env[i], name, n) == 0 && env[i][n] == '=') {
			return env[i] + n + 1;
		}
	}
	return "";
}

int main(void) {
	size_t count = 0, size = 0;
	if (__wasi_environ_sizes_get(&count, &size) != 0 || count > sizeof env / sizeof env[0] || size > sizeof env_buf ||
	    __wasi_environ_get((uint8_t **)env, (uint8_t *)env_buf) != 0) {
		count = 0;
	}

	static char in[16 << 10];
	size_t body = 0;
	for (;;) {
		ssize_t r = read(0, in, sizeof in);
		if (r <= 0) {
			break;
		}
		body += (size_t)r;
	}

	static char out[1024];
	int n = snprintf(out, sizeof out, "Content-Type: text/plain\n\nhello from c: %s %s %zu bytes\n",
			 lookup(count, "REQUEST_METHOD"), lookup(count, "PATH_INFO"), body);
	if (n > (int)sizeof out - 1) {
		n = sizeof out - 1;
	}
	for (int off = 0; off < n;) {
		ssize_t w = write(1, out + off, (size_t)(n - off));
		if (w <= 0) {
			return 1;
		}
		off += (int)w;
	}
	return 0;
}
