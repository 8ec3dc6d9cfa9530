"""Reload benchmark app whose import takes one second (a large framework, a cold cache).

Same answer as versioned.py (`VERSION PID GENERATION`); bench/reload.py copies and
rewrites it like that one.
"""

import os
import time

time.sleep(1.0)

VERSION = "1"


def app(environ, start_response):
    gen = os.environ.get("SOCKACTD_GENERATION", "-")
    body = f"{VERSION} {os.getpid()} {gen}\n"
    data = body.encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(data)))])
    return [data]


application = app
