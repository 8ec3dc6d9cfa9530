"""Settings of the bench's Django project: production-like (DEBUG off, cached templates).

The database comes from the environment the bench sets: DJANGOPG_HOST (a UNIX socket
directory), DJANGOPG_PORT, DJANGOPG_NAME, DJANGOPG_USER. Persistent connections are on
for every server alike (CONN_MAX_AGE): each worker thread keeps its own connection.
"""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent
SECRET_KEY = "bench-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "djangopg.urls"
WSGI_APPLICATION = "djangopg.wsgi.application"
INSTALLED_APPS = ["djangopg"]
# The stock middleware of `startproject` less sessions, auth and messages (no users here).
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,  # with DEBUG off, Django caches the compiled templates
        "OPTIONS": {"context_processors": []},
    }
]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": os.environ.get("DJANGOPG_HOST", "/run/postgresql"),
        "PORT": os.environ.get("DJANGOPG_PORT", "5432"),
        "NAME": os.environ.get("DJANGOPG_NAME", "bench"),
        "USER": os.environ.get("DJANGOPG_USER", "postgres"),
        "CONN_MAX_AGE": 600,
        "CONN_HEALTH_CHECKS": False,
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"
LOGGING = {"version": 1, "disable_existing_loggers": False}
