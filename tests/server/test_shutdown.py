"""SIGTERM lets the request in flight finish, then the process exits cleanly."""

from __future__ import annotations

import os
import signal
import threading
import time

import httpx

from tests.server.conftest import Server, metric


def test_graceful_shutdown_finishes_in_flight(server_files, tmp_path) -> None:
    srv = Server(tmp_path, ["--voices", str(server_files / "voices.yaml")])
    try:
        srv.wait_ready()
        result: dict = {}
        text = " ".join(f"Sentence {i} of a request that is still running." for i in range(6))

        def call() -> None:
            r = httpx.get(srv.url + "/tts", params={"text": text, "text_lang": "en", "voice": "ref",
                                                    "text_split_method": "cut5"}, timeout=120)
            result["status"], result["body"] = r.status_code, r.content

        t = threading.Thread(target=call)
        t.start()
        deadline = time.monotonic() + 30
        while metric(httpx.get(srv.url + "/metrics").text, "fastsovits_requests_in_flight") < 1:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        os.kill(srv.proc.pid, signal.SIGTERM)
        t.join(120)
        assert result["status"] == 200 and result["body"][:4] == b"RIFF" and len(result["body"]) > 44
        assert srv.proc.wait(60) == 0
    finally:
        srv.stop()
