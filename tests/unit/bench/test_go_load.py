import http.server
import threading

import pytest

from bench.go_load import GoLoadClient, parse


def test_samples_are_on_the_monotonic_clock_and_failures_keep_their_kind() -> None:
    out = (
        "T0 5000000000\n"
        "S ka1 2000000 3500000 200 green 0 -\n"
        "S ka0 1000000 1500000 - - 1 *net.OpError:_dial_tcp_127.0.0.1:1:_connection_refused\n"
    )
    first, second = parse(out)
    assert (first.stream, first.start, first.end, first.ok, first.new_connection) == ("ka0", 5.001, 5.0015, False, True)
    assert first.error == "*net.OpError: dial tcp 127.0.0.1:1: connection refused"
    assert (second.status, second.color, second.ok) == (200, "green", True)


def test_output_without_its_clock_line_is_refused() -> None:
    with pytest.raises(ValueError, match="no T0 line"):
        parse("S ka0 1 2 200 blue 0 -\n")


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    served = 0

    def do_GET(self) -> None:
        type(self).served += 1
        # Every third answer closes its connection: the client must open a new one, not retry.
        close = type(self).served % 3 == 0
        body = b"ok"
        self.send_response(200)
        self.send_header("X-Upstream-Color", "blue")
        self.send_header("Content-Length", str(len(body)))
        if close:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = close

    def log_message(self, *_: object) -> None:
        pass


def test_the_real_client_sends_on_schedule_and_reopens_a_closed_connection() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = GoLoadClient(server.server_address[1], connections=2, per_connection_rate=20, duration=1.0).start()
        samples = client.join()
    finally:
        server.shutdown()
    # At most the schedule (2 x 20/s x 1 s, never a retry on top); a slow machine may send fewer.
    assert {s.stream for s in samples} == {"ka0", "ka1"} and len(samples) <= 42, len(samples)
    assert all(s.ok and s.color == "blue" for s in samples)
    assert len(samples) == _Handler.served
    assert sum(s.new_connection for s in samples) >= len(samples) // 3
