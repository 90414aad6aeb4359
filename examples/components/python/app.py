# The Python hello as a wasi:http/proxy component (componentize-py): the
# incoming-handler written against the generated bindings, nothing
# wasmesh-specific. Child resources (streams) are dropped before their
# parents are finished, as wasi:http requires.
from wit_world import exports
from wit_world.imports.types import (
    IncomingRequest, ResponseOutparam, OutgoingResponse, Fields, OutgoingBody, IncomingBody,
)
from componentize_py_types import Ok, Err


class IncomingHandler(exports.IncomingHandler):
    def handle(self, request: IncomingRequest, response_out: ResponseOutparam) -> None:
        name = type(request.method()).__name__.removeprefix("Method").lstrip("_").upper()
        path = (request.path_with_query() or "/").split("?")[0]
        body = b""
        incoming = request.consume()
        with incoming.stream() as stream:
            while True:
                try:
                    body += stream.blocking_read(65536)
                except Err:
                    break
        IncomingBody.finish(incoming)
        response = OutgoingResponse(Fields.from_list([("content-type", b"text/plain")]))
        out = response.body()
        ResponseOutparam.set(response_out, Ok(response))
        with out.write() as w:
            w.blocking_write_and_flush(f"hello from python: {name} {path} {len(body)} bytes".encode())
        OutgoingBody.finish(out, None)
