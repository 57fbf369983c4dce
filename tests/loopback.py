"""A loopback HTTP server for capture tests: answers canned JSON or server-sent events per path
and keeps every request it received (method, path, headers, body) for assertions."""

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
                path = self.path.split("?")[0]
                req = {
                    "method": self.command,
                    "path": self.path,
                    "headers": dict(self.headers),
                    "body": body,
                }
                server.received.append(req)
                route = server.routes.get((self.command, path))
                if route is None:
                    status, ctype, payload, extra = json_answer({"error": "no route"}, 404)
                else:
                    status, ctype, payload, extra = route(req)
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

    def __enter__(self) -> Loopback:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
