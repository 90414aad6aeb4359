// The TypeScript hello as a wasi:http/proxy component: compiled with tsc,
// then made a component with componentize-js, like the JavaScript one.
// `served` is module state: each request gets a new instance, so it is
// always 1 — the gateway's isolation, visible from inside.

interface FetchEvent extends Event {
  readonly request: Request;
  respondWith(response: Response | Promise<Response>): void;
}

let served = 0;

addEventListener('fetch', (event: Event) => {
  const e = event as FetchEvent;
  served++;
  const url = new URL(e.request.url);
  e.respondWith(new Response(`hello from typescript: ${e.request.method} ${url.pathname} (request ${served} of this instance)`, {
    headers: { 'content-type': 'text/plain' },
  }));
});
