// Build (from this directory, after `npm ci`):
//   ./node_modules/.bin/asc assembly/index.ts --config ./node_modules/@assemblyscript/wasi-shim/asconfig.json -O3 --noAssert -o frontend.wasm
//
// frontend: a wasmesh guest that calls another service through the host's
// http_call (see wasmesh.ts) and shows what it got, with the trace context
// it runs under. Env USERS_URL (if unset or empty: "wasmesh://users") is the
// target; this request's PATH_INFO and QUERY_STRING are appended to it.
import { Header, errorName, httpCall, log, traceContext, INFO } from "./wasmesh";

function getenv(key: string): string {
  const env = process.env;
  return env.has(key) ? env.get(key) : "";
}

function main(): void {
  let target = getenv("USERS_URL");
  if (target.length == 0) target = "wasmesh://users";
  const query = getenv("QUERY_STRING");
  let url = target + getenv("PATH_INFO");
  if (query.length > 0) url += "?" + query;

  log(INFO, "frontend typescript calling " + url);
  const tp = traceContext().traceparent;

  const r = httpCall("GET", url, [new Header("X-From", "frontend-typescript")]);
  const resp = r.response;
  if (resp) {
    const v = resp.header("X-Wasmesh-Version");
    const version = v ? v : "-";
    const head = Uint8Array.wrap(String.UTF8.encode(
      "Content-Type: text/plain\n\nfrontend typescript (traceparent " + tp + ") -> " + resp.status.toString() + " " + version + " "));
    const body = resp.body;
    const nl: i32 = body.length > 0 && body[body.length - 1] == 0x0a ? 0 : 1;
    const out = new Uint8Array(head.length + body.length + nl);
    out.set(head, 0);
    out.set(body, head.length);
    if (nl) out[out.length - 1] = 0x0a;
    process.stdout.write(out.buffer);
  } else {
    process.stdout.write(
      "Status: 502\nContent-Type: text/plain\n\nfrontend typescript: http_call failed: " +
        errorName(r.code) + " (" + r.code.toString() + ")\n");
  }
}

main();
