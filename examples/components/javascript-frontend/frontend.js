// A JavaScript frontend as a wasi:http/proxy component: it calls the
// "users" service with fetch(), with the request's method and body, which
// the gateway sends in-process (an http:// URL whose host is a service of
// the config) with the trace carried on. Nothing here is wasmesh-specific.
addEventListener('fetch', (event) => {
  event.respondWith((async () => {
    const url = new URL(event.request.url);
    const traceparent = event.request.headers.get('traceparent');
    const method = event.request.method;
    const init = { method };
    if (method !== 'GET' && method !== 'HEAD') {
      init.body = await event.request.text(); // written after the request is handed to the host
    }
    const users = await fetch('http://users' + url.pathname, init);
    const body = await users.text();
    return new Response(`frontend javascript (traceparent ${traceparent}) -> ${users.status} ${body}`, {
      headers: { 'content-type': 'text/plain' },
    });
  })());
});
