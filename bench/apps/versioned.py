"""Reload benchmark app: answers with its code version, worker PID and sockactd generation.

bench/reload.py copies this file into a temporary directory and rewrites the
`VERSION = ...` line before each reload, so every server (sockactd, uWSGI,
gunicorn) shows the same way whether a response came from new code; its
`slow_import` and `broken` apps are this file with lines added after `import os`.
Standard library only: Debian's uWSGI imports it with the system Python.
"""

import os

VERSION = "1"


def app(environ, start_response):
    gen = os.environ.get("SOCKACTD_GENERATION", "-")
    body = f"{VERSION} {os.getpid()} {gen}\n"
    data = body.encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(data)))])
    return [data]


application = app
