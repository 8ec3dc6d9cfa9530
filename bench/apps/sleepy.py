"""A WSGI app that waits like a view waiting on its database: sleeps SLEEPY_MS (default 20) ms.

The body is the worker's PID, so a benchmark sees which worker served each request.
Plain WSGI and standard library only (sockactd, gunicorn and Debian's uWSGI import it).
"""

import os
import time

DELAY = float(os.environ.get("SLEEPY_MS", "20")) / 1000.0


def app(environ, start_response):
    time.sleep(DELAY)
    body = str(os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


application = app
