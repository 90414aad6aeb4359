// Build (from this directory, after `npm ci`):
//   ./node_modules/.bin/asc assembly/index.ts --config ./node_modules/@assemblyscript/wasi-shim/asconfig.json --exportStart _initialize --runtime stub -O3 --noAssert -o hello.wasm
//
// --runtime stub, as for the command hello: each request starts from the
// snapshot, so nothing it allocates outlives it.
//
// The AssemblyScript hello as a reactor (docs/abi.md, "Reactors"): the
// module's start (the runtime's set-up and the top-level statements) is
// exported as _initialize, which the host runs once and snapshots, and
// wasmesh_handle serves each request from that snapshot. The request is CGI
// as for a command; only the environment must be read per request, since
// the shim's process.env is read once and cached.
import { environ_get, environ_sizes_get } from "@assemblyscript/wasi-shim/assembly/bindings/wasi_snapshot_preview1";

// Made once, in _initialize: part of the snapshot, so no request allocates
// them.
const buf = new ArrayBuffer(65536);
const sizes = new ArrayBuffer(8);

// getenv reads key from the current request's environment.
function getenv(key: string): string {
  const sp = changetype<usize>(sizes);
  if (environ_sizes_get(sp, sp + 4) != 0) return "";
  const count = load<u32>(sp);
  const size = load<u32>(sp + 4);
  if (count == 0) return "";
  const ptrs = new ArrayBuffer(<i32>count * sizeof<usize>());
  const vars = new ArrayBuffer(<i32>size);
  if (environ_get(changetype<usize>(ptrs), changetype<usize>(vars)) != 0) return "";
  const prefix = key + "=";
  for (let i: u32 = 0; i < count; i++) {
    const p = load<usize>(changetype<usize>(ptrs) + i * sizeof<usize>());
    let end = p;
    while (load<u8>(end) != 0) end++;
    const kv = String.UTF8.decodeUnsafe(p, end - p);
    if (kv.startsWith(prefix)) return kv.substring(prefix.length);
  }
  return "";
}

export function wasmesh_handle(): void {
  const method = getenv("REQUEST_METHOD");
  const path = getenv("PATH_INFO");
  let total: i64 = 0;
  while (true) {
    const n = process.stdin.read(buf);
    if (n <= 0) break;
    total += n;
  }
  process.stdout.write(
    "Content-Type: text/plain\n\nhello from typescript reactor: " +
      method + " " + path + " " + total.toString() + " bytes\n"
  );
}
