"""The WSGI application every server under test loads: `djangopg.wsgi:application`."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "djangopg.settings")
application = get_wsgi_application()
