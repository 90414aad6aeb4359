// The JavaScript hello as a wasi:http/proxy component: a fetch event
// handler, as componentize-js runs it (no wasmesh SDK, nothing
// wasmesh-specific). Built by examples/Makefile with build.mjs.
addEventListener('fetch', (event) => {
  const url = new URL(event.request.url);
  event.respondWith((async () => {
    const body = await event.request.text();
    return new Response(`hello from javascript: ${event.request.method} ${url.pathname} ${body.length} bytes`, {
      headers: { 'content-type': 'text/plain' },
    });
  })());
});
