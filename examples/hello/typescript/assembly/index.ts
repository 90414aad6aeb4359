// Build (from this directory, after `npm ci`):
//   ./node_modules/.bin/asc assembly/index.ts --config ./node_modules/@assemblyscript/wasi-shim/asconfig.json --runtime stub -O3 --noAssert -o hello.wasm
//
// --runtime stub: allocation without a garbage collector. wasmesh resets
// the instance after every request, so no garbage outlives one; a guest
// whose single request allocates without bound needs the default
// (incremental) runtime instead.
//
// A wasmesh guest: the request arrives CGI-style (RFC 3875) as environment
// variables plus the body on stdin; the response is CGI headers, a blank
// line and the body on stdout. `process` comes from @assemblyscript/wasi-shim.
import { environ_get, environ_sizes_get } from "@assemblyscript/wasi-shim/assembly/bindings/wasi_snapshot_preview1";

// The environment straight from WASI, read once, each value decoded only
// when asked for: the shim's process.env decodes every variable (a request
// has a dozen or more, one per header) into a Map of UTF-16 strings, which
// cost more than the rest of the run.
const sizes = new ArrayBuffer(8);
let envCount: u32 = 0;
let envPtrs = new ArrayBuffer(0);
let envVars = new ArrayBuffer(0);

function readEnv(): void {
  const sp = changetype<usize>(sizes);
  if (environ_sizes_get(sp, sp + 4) != 0) return;
  const count = load<u32>(sp);
  envPtrs = new ArrayBuffer(<i32>count * sizeof<usize>());
  envVars = new ArrayBuffer(<i32>load<u32>(sp + 4));
  if (environ_get(changetype<usize>(envPtrs), changetype<usize>(envVars)) != 0) return;
  envCount = count;
}

// getenv is the value of key (ASCII), "" when it is not set.
function getenv(key: string): string {
  const k = String.UTF8.encode(key);
  const kp = changetype<usize>(k);
  const kl = <usize>k.byteLength;
  for (let i: u32 = 0; i < envCount; i++) {
    const p = load<usize>(changetype<usize>(envPtrs) + i * sizeof<usize>());
    let j: usize = 0;
    while (j < kl && load<u8>(p + j) == load<u8>(kp + j)) j++; // stops at the variable's NUL
    if (j < kl || load<u8>(p + kl) != 0x3d) continue; // not key=
    let end = p + kl + 1;
    while (load<u8>(end) != 0) end++;
    return String.UTF8.decodeUnsafe(p + kl + 1, end - p - kl - 1);
  }
  return "";
}

readEnv();

const method = getenv("REQUEST_METHOD");
const path = getenv("PATH_INFO");
getenv("QUERY_STRING"); // read but, like the other languages, not echoed

// Read the whole body to EOF, counting its bytes, 4 KiB at a time: the
// buffer is allocated (and zeroed) on every run, and every page of it the
// run touches is a page the host copies back after it.
const buf = new ArrayBuffer(4096);
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
