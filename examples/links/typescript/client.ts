// The TypeScript client of typed links: a wasi:http/proxy component of world
// hash-client in ../wit (as ../c/client.c), compiled with tsc, then made a
// component with componentize-js, whose import of example:crypto/hash@0.1.0
// a link of wasmesh serves with a hasher's export.
//
// It answers 200, text/plain, with "ts ", hex(sha256(body)) and a newline
// (the C client's answer with a prefix, so that a test can tell them
// apart); with an empty body, the request's path-with-query is what it
// hashes.
import { sha256, hex } from 'example:crypto/hash@0.1.0';

interface FetchEvent extends Event {
  readonly request: Request;
  respondWith(response: Response | Promise<Response>): void;
}

async function answer(request: Request): Promise<Response> {
  let data = new Uint8Array(await request.arrayBuffer());
  if (data.length === 0) {
    const url = new URL(request.url);
    data = new TextEncoder().encode(url.pathname + url.search);
  }
  return new Response(`ts ${hex(sha256(data))}\n`, {
    headers: { 'content-type': 'text/plain' },
  });
}

addEventListener('fetch', (event: Event) => {
  const e = event as FetchEvent;
  e.respondWith(answer(e.request));
});
