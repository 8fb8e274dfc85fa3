"""Account-level endpoints: which account a token opens."""

from django.http import HttpResponse

from accounts.exceptions import NotFound

from .inputs import Integer
from .kit import ApiRequest, endpoint, operation
from .openapi import ref
from .paging import Paging, paged_response
from .serializers import account_json


class Listing(Paging):
    per_page = Integer(minimum=1, maximum=50)


@operation(
    "The account the token opens (one; past page 1 is empty).",
    tag="accounts",
    query=Listing,
    result=ref("Account"),
    listing=True,
)
def _list_accounts(request: ApiRequest, *, query: Listing) -> HttpResponse:
    # A token opens one account; past page 1 is empty, so clients that page
    # until an empty page (the official SDK) stop.
    return paged_response([request.cloud_account], query.page(), account_json)


def _unknown_route(request: ApiRequest, path: str = "") -> HttpResponse:
    raise NotFound(f"No route for {request.method} /client/v4/{path}", code=7000)


accounts = endpoint()({"GET": _list_accounts})
unknown_route = endpoint(auth=False)(
    dict.fromkeys(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"], _unknown_route)
)
