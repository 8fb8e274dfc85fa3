"""Account-level endpoints: which account a token opens."""

from django.http import HttpRequest, HttpResponse

from accounts.exceptions import NotFound

from . import envelope
from .kit import endpoint
from .serializers import account_json


def _list_accounts(request: HttpRequest) -> HttpResponse:
    account = request.cloud_account
    result = [account_json(account)]
    return envelope.success(
        result,
        result_info=envelope.page_info(page=1, per_page=20, count=1, total_count=1),
    )


def _unknown_route(request: HttpRequest, path: str = "") -> HttpResponse:
    raise NotFound(f"No route for {request.method} /client/v4/{path}", code=7000)


accounts = endpoint()({"GET": _list_accounts})
unknown_route = endpoint(auth=False)(
    dict.fromkeys(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"], _unknown_route)
)
