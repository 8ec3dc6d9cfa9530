"""sockactd: a WSGI application server made for systemd."""

__version__ = "0.1.0"
