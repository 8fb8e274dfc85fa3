"""One mapping from whatever a handler raises to an answer, shared by client/v4
(the envelope) and the Worker-binding endpoints (their own text protocol).

Each API passes how it words an error; which errors exist, and that the
unforeseen ones are logged in full but told to the caller without a detail,
is decided here once."""

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError
from django.http import HttpResponse

from accounts.exceptions import (
    DomainError,
    PayloadTooLarge,
    ServiceUnavailable,
    UnexpectedError,
)

logger = logging.getLogger("claimportal.api")


@contextmanager
def answering_failures(
    respond: Callable[[DomainError], HttpResponse], *, where: str
) -> Iterator[list[HttpResponse]]:
    """Turn whatever a handler raises into ``respond(error)``: domain errors as
    they are, the rest as the error every caller may see (the full exception
    goes to the log, never to the caller). The answer is left in the list."""
    answer: list[HttpResponse] = []
    try:
        yield answer
    except DomainError as error:
        answer.append(respond(error))
    except RequestDataTooBig:
        answer.append(respond(PayloadTooLarge()))
    except DatabaseError:
        logger.exception("database error on %s", where)
        answer.append(respond(ServiceUnavailable()))
    except Exception:
        logger.exception("unexpected error on %s", where)
        answer.append(respond(UnexpectedError()))
