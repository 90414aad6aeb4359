// Build (from this directory, after `npm ci`):
//   ./node_modules/.bin/asc assembly/index.ts --config ./node_modules/@assemblyscript/wasi-shim/asconfig.json -O3 --noAssert -o hello.wasm
//
// A wasmesh guest: the request arrives CGI-style (RFC 3875) as environment
// variables plus the body on stdin; the response is CGI headers, a blank
// line and the body on stdout. `process` comes from @assemblyscript/wasi-shim.

function getenv(key: string): string {
  const env = process.env;
  return env.has(key) ? env.get(key) : "";
}

const method = getenv("REQUEST_METHOD");
const path = getenv("PATH_INFO");
getenv("QUERY_STRING"); // read but, like the other languages, not echoed

// Read the whole body to EOF, counting its bytes.
const buf = new ArrayBuffer(65536);
let total: i64 = 0;
while (true) {
  const n = process.stdin.read(buf);
  if (n <= 0) break;
  total += n;
}

process.stdout.write(
  "Content-Type: text/plain\n\nhello from typescript: " +
    method + " " + path + " " + total.toString() + " bytes\n"
);
