"""A real HTTP endpoint on 127.0.0.1 for webhook tests: it records every request and answers as told
(fail the next N requests, hold a request until released)."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict:
        return json.loads(self.body)


@dataclass
class Receiver:
    url: str = ""
    requests: list[Received] = field(default_factory=list)
    fail_next: int = 0  # answer 500 to this many requests, then 204
    hold: threading.Event | None = None  # when set, requests wait for it before answering
    arrived: threading.Event = field(default_factory=threading.Event)

    def delivered(self) -> list[Received]:
        """Requests that got a 2xx, in arrival order."""
        return [r for r in self.requests if getattr(r, "ok", False)]


def start_receiver() -> tuple[Receiver, ThreadingHTTPServer]:
    receiver = Receiver()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's name)
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            received = Received({k.lower(): v for k, v in self.headers.items()}, body)
            with lock:
                receiver.requests.append(received)
                failing = receiver.fail_next > 0
                if failing:
                    receiver.fail_next -= 1
            receiver.arrived.set()
            if receiver.hold is not None:
                receiver.hold.wait(timeout=60)
            received.ok = not failing
            self.send_response(500 if failing else 204)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    return receiver, server
