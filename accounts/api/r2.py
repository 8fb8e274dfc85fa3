"""R2 is not a product of temporary accounts: every R2 call is refused.

Not with a 403, which wrangler's auto-provisioning reads as "no permission to
look, carry on" (spec 1.4): a 400 with Cloudflare's "R2 not enabled" code makes
wrangler stop and print the message, whether it is provisioning a bucket or
running an ``r2`` command.
"""

from http import HTTPStatus

from django.http import HttpRequest, HttpResponse

from accounts.exceptions import DomainError

from .kit import endpoint
from .not_offered import refusal


class R2NotOffered(DomainError):
    code = 10042
    status = HTTPStatus.BAD_REQUEST
    message = (
        "R2 is not available on temporary accounts. Remove the r2_buckets "
        "binding (or skip the r2 command) to deploy now; once you have claimed "
        "this account, use R2 from your own Cloudflare account."
    )


def _refuse(request: HttpRequest, account_id: str, rest: str = "") -> HttpResponse:
    return refusal(R2NotOffered())


refused = endpoint()(
    dict.fromkeys(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"], _refuse)
)
