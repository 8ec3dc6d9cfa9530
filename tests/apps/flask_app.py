"""A small real-framework app: Flask routes with JSON, forms, streaming and errors."""

from __future__ import annotations

from collections.abc import Iterator

from flask import Flask, Response, jsonify, request, stream_with_context

__all__ = ["app"]

app = Flask(__name__)


@app.get("/")
def index() -> str:
    return "hello from flask"


@app.post("/json")
def echo_json() -> Response:
    data = request.get_json(force=True)
    return jsonify(received=data, path=request.path, scheme=request.scheme)


@app.post("/form")
def form() -> Response:
    return jsonify(dict(request.form))


@app.get("/stream")
def stream() -> Response:
    def generate() -> Iterator[str]:
        for i in range(3):
            yield f"line {i}\n"

    return Response(stream_with_context(generate()), mimetype="text/plain")


@app.get("/boom")
def boom() -> str:
    raise RuntimeError("flask view failed")


@app.get("/unicode/<name>")
def unicode_path(name: str) -> Response:
    return jsonify(name=name, path_info=request.environ["PATH_INFO"])
