"""Account-level endpoints: which account a token opens."""

from django.http import HttpRequest, HttpResponse

from accounts.exceptions import NotFound

from .kit import ApiRequest, endpoint
from .paging import page_request, paged_response
from .serializers import account_json


def _list_accounts(request: ApiRequest) -> HttpResponse:
    # A token opens one account; past page 1 is empty, so clients that page
    # until an empty page (the official SDK) stop.
    return paged_response(
        [request.cloud_account], page_request(request, max_size=50), account_json
    )


def _unknown_route(request: HttpRequest, path: str = "") -> HttpResponse:
    raise NotFound(f"No route for {request.method} /client/v4/{path}", code=7000)


accounts = endpoint()({"GET": _list_accounts})
unknown_route = endpoint(auth=False)(
    dict.fromkeys(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"], _unknown_route)
)
