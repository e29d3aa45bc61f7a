"""The production server lets long API URLs reach Django, which answers them in JSON."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_long_query_under_api_gets_the_json_error_not_gunicorns_page():
    """gunicorn.conf.py (read from the working directory) admits a 6 kB request line."""
    port = _free_port()
    env = {**os.environ, "SECRET_KEY": "test-only-" + "x" * 50, "DEBUG": "0"}
    server = subprocess.Popen(
        [Path(sys.executable).with_name("gunicorn"), "closing_crm.wsgi", "-b", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/api/v1/deals/?page_size={'9' * 6000}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(url, timeout=5)
            except urllib.error.HTTPError as error:
                response = error
                break
            except OSError:
                time.sleep(0.2)
        else:
            raise AssertionError("gunicorn did not start")
        assert response.code == 401
        assert response.headers["Content-Type"] == "application/json"
    finally:
        server.terminate()
        server.wait(timeout=10)
