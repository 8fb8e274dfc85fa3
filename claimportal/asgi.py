import os

from django.core.asgi import get_asgi_application

# What serves a deployment runs on production settings unless told otherwise
# (bin/run and the tests say which they want).
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "claimportal.settings.prod")
application = get_asgi_application()
