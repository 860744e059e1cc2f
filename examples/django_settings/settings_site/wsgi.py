"""WSGI entry point: ``gunicorn --workers 4 settings_site.wsgi``."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings_site.settings")
application = get_wsgi_application()
