"""A WSGI app that holds a request ?s=SECONDS (default 0, at most 30), then answers its PID.

bench/pinning.py keeps one worker busy with it while the clients parked on that worker
send quick requests. Plain WSGI and standard library only.
"""

import os
import time
from urllib.parse import parse_qs


def app(environ, start_response):
    query = parse_qs(environ.get("QUERY_STRING", ""))
    time.sleep(min(float(query.get("s", ["0"])[0]), 30.0))
    body = str(os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


application = app
