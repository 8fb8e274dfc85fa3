"""The internal binding endpoints as their own WSGI application.

The runtime serves it on a unix socket with gunicorn, so these URLs exist only
there: the public web server's URLconf does not know them.
"""

import os
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.handlers.exception import convert_exception_to_response
from django.core.handlers.wsgi import WSGIHandler
from django.core.wsgi import get_wsgi_application
from django.http import HttpRequest, HttpResponseBase

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "claimportal.settings.dev")
get_wsgi_application()  # sets Django up

# Binding calls come by the thousand and each is a few queries: every thread
# keeps its database connection rather than opening one per call (set before
# the first connection is made, which reads these settings).
settings.DATABASES["default"]["CONN_MAX_AGE"] = None
settings.DATABASES["default"]["CONN_HEALTH_CHECKS"] = True


class InternalHandler(WSGIHandler):
    """Django without middleware: binding calls carry no session, cookie or
    CSRF token, and their Host is the runtime's, not one of ALLOWED_HOSTS."""

    # Django's own members this sets; its stubs describe the public ones only.
    _view_middleware: list[Callable[..., Any]]
    _template_response_middleware: list[Callable[..., Any]]
    _exception_middleware: list[Callable[..., Any]]
    _get_response: Callable[[HttpRequest], HttpResponseBase]

    def load_middleware(self, is_async: bool = False) -> None:
        self._view_middleware = []
        self._template_response_middleware = []
        self._exception_middleware = []
        self._middleware_chain = convert_exception_to_response(self._get_response)

    def get_response(self, request: HttpRequest) -> HttpResponseBase:
        request.urlconf = "accounts.previews.urls"
        return super().get_response(request)


application = InternalHandler()
