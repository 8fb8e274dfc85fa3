"""Keep the run log for what needs a person: a KV miss or wrangler probing for
a resource that is not there yet is an answer, not a warning."""

import logging

API_PREFIX = "/client/v4/"


class ExpectedNotFound(logging.Filter):
    """Drops django.request's "Not Found" lines for the agent API, where a 404
    is how the API answers "no such key" and "not created yet"."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "status_code", None) != 404:
            return True
        request = getattr(record, "request", None)
        path = getattr(request, "path", "")
        return not path.startswith(API_PREFIX)
