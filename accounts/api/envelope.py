"""The Cloudflare v4 envelope: the one builder every client/v4 answer goes through."""

from http import HTTPStatus
from typing import Any

from django.http import JsonResponse

from accounts.exceptions import DomainError, RateLimited


def success(
    result: Any = None,
    *,
    status: int = HTTPStatus.OK,
    result_info: dict[str, Any] | None = None,
    messages: list[Any] | None = None,
) -> JsonResponse:
    body: dict[str, Any] = {
        "success": True,
        "errors": [],
        "messages": messages or [],
        "result": result,
    }
    if result_info is not None:
        body["result_info"] = result_info
    return JsonResponse(body, status=status)


def failure(*, code: int, message: str, status: int) -> JsonResponse:
    return JsonResponse(
        {
            "success": False,
            "errors": [{"code": code, "message": message}],
            "messages": [],
            "result": None,
        },
        status=status,
    )


def from_error(error: DomainError) -> JsonResponse:
    response = failure(code=error.code, message=error.message, status=error.status)
    if isinstance(error, RateLimited):
        response["Retry-After"] = str(error.retry_after)
    return response


def page_info(*, page: int, per_page: int, count: int, total_count: int) -> dict:
    return {
        "page": page,
        "per_page": per_page,
        "count": count,
        "total_count": total_count,
        "total_pages": -(-total_count // per_page) if per_page else 0,
    }
