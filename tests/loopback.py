"""A loopback HTTP server for capture tests: answers canned JSON or server-sent events per path
and keeps every request it received (method, path, headers, body) for assertions. The same routes
can be served without a socket through an httpx/httpx2 `MockTransport` (`Loopback.transport`)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# A route answers (status, content_type, body, extra headers); body is bytes or a list of
# chunks sent one by one (event streams).
Answer = tuple[int, str, Any, dict[str, str]]


def json_answer(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Answer:
    return status, "application/json", json.dumps(obj).encode(), headers or {}


def sse_answer(events: list[tuple[str | None, Any]]) -> Answer:
    chunks = []
    for name, data in events:
        text = data if isinstance(data, str) else json.dumps(data)
        chunks.append(((f"event: {name}\n" if name else "") + f"data: {text}\n\n").encode())
    return 200, "text/event-stream", chunks, {}


class Loopback:
    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Callable[[dict[str, Any]], Answer]] = {}
        self.received: list[dict[str, Any]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # no 40 ms delayed-ACK stalls between writes

            def log_message(self, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                req = {
                    "method": self.command,
                    "path": self.path,
                    "headers": dict(self.headers),
                    "body": body,
                }
                status, ctype, payload, extra = server.answer(req)
                self.send_response(status)
                self.send_header("content-type", ctype)
                for k, v in extra.items():
                    self.send_header(k, v)
                if isinstance(payload, list):
                    self.send_header("transfer-encoding", "chunked")
                    self.end_headers()
                    for chunk in payload:
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                        self.wfile.flush()
                    self.wfile.write(b"0\r\n\r\n")
                else:
                    self.send_header("content-length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def route(
        self, method: str, path: str, answer: Answer | Callable[[dict[str, Any]], Answer]
    ) -> None:
        self.routes[(method, path)] = answer if callable(answer) else (lambda _req: answer)

    def answer(self, req: dict[str, Any]) -> Answer:
        """The route's answer to `req` (a 404 JSON body when no route matches); notes `req`."""
        self.received.append(req)
        route = self.routes.get((req["method"], req["path"].split("?")[0]))
        return json_answer({"error": "no route"}, 404) if route is None else route(req)

    def transport(self, mod: Any, *, is_async: bool = False, streamed: bool = False) -> Any:
        """A `mod.MockTransport` (`mod` = httpx or httpx2) answering as this server would. By
        default it hands back responses with their body already read, as MockTransport, respx,
        pytest-httpx and vcrpy do; `streamed=True` hands the body over chunk by chunk instead."""

        def handler(request: Any) -> Any:
            req = {
                "method": request.method,
                "path": request.url.raw_path.decode(),
                "headers": dict(request.headers),
                "body": request.content,
            }
            status, ctype, payload, extra = self.answer(req)
            chunks = payload if isinstance(payload, list) else [payload]
            headers = {"content-type": ctype, **extra}
            if not streamed:
                return mod.Response(status, headers=headers, content=b"".join(chunks))
            if is_async:

                async def body() -> Any:
                    for chunk in chunks:
                        yield chunk

                return mod.Response(status, headers=headers, content=body())
            return mod.Response(status, headers=headers, content=iter(chunks))

        return mod.MockTransport(handler)  # it reads the request body before calling handler

    def __enter__(self) -> Loopback:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
