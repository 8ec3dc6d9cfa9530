"""Hello-world WSGI app for the throughput benchmarks (bench/throughput.py, bench/nginx.py).

Plain WSGI and standard library only, so the same file is imported by sockactd and
gunicorn (the venv's Python) and by Debian's uWSGI (the system Python 3.11).
"""

BODY = b"Hello, World!"
HEADERS = [("Content-Type", "text/plain"), ("Content-Length", str(len(BODY)))]


def app(environ, start_response):
    start_response("200 OK", HEADERS)
    return [BODY]


application = app
