// A JavaScript frontend as a wasi:http/proxy component: it calls the
// "users" service with fetch(), which the gateway sends in-process (an
// http:// URL whose host is a service of the config) with the trace
// carried on. Nothing here is wasmesh-specific.
addEventListener('fetch', (event) => {
  event.respondWith((async () => {
    const url = new URL(event.request.url);
    const traceparent = event.request.headers.get('traceparent');
    const users = await fetch('http://users' + url.pathname);
    const body = await users.text();
    return new Response(`frontend javascript (traceparent ${traceparent}) -> ${users.status} ${body}`, {
      headers: { 'content-type': 'text/plain' },
    });
  })());
});
