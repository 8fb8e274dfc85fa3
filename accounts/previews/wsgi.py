"""The internal binding endpoints as their own WSGI application.

The runtime serves it on a unix socket with gunicorn, so these URLs exist only
there: the public web server's URLconf does not know them.
"""

import os

from django.core.handlers.wsgi import WSGIHandler
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "claimportal.settings.dev")
get_wsgi_application()  # sets Django up


class InternalHandler(WSGIHandler):
    def get_response(self, request):
        request.urlconf = "accounts.previews.urls"
        return super().get_response(request)


application = InternalHandler()
