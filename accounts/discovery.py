"""Agent discovery: /auth.md (and /.well-known/auth.md) tells an agent that
lands on this origin how to get a temporary account without a person; /llms.txt
points language models at it. Both are rendered from the live settings, so the
numbers they state (window, difficulty, limits) are the ones in force."""

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_safe

# The words an agent puts next to the claim URL for its person.
CLAIM_PROMPT = "Click here to keep this deployment"
MARKDOWN = "text/markdown; charset=utf-8"
TEXT = "text/plain; charset=utf-8"


def _minutes(delta) -> int:
    return int(delta.total_seconds() // 60)


def facts() -> dict[str, object]:
    """What the documents state, taken from the settings in force."""
    base = settings.PUBLIC_BASE_URL
    return {
        "base": base,
        "api": f"{base}/client/v4",
        "claim_prompt": CLAIM_PROMPT,
        "claim_window_minutes": _minutes(settings.CLAIMPORTAL_CLAIM_WINDOW),
        "pow_k": settings.CLAIMPORTAL_POW_K,
        "pow_g": settings.CLAIMPORTAL_POW_G,
        "challenge_ttl_minutes": _minutes(settings.CLAIMPORTAL_POW_CHALLENGE_TTL),
        "rate_limit": settings.CLAIMPORTAL_RATE_LIMIT_PER_IP,
        "rate_window_seconds": settings.CLAIMPORTAL_RATE_LIMIT_WINDOW_SECONDS,
        "purge_interval_seconds": settings.CLAIMPORTAL_PURGE_INTERVAL_SECONDS,
    }


def _document(template: str, content_type: str) -> HttpResponse:
    return HttpResponse(render_to_string(template, facts()), content_type=content_type)


@require_safe
@cache_control(public=True, max_age=300)
def auth_md(request: HttpRequest) -> HttpResponse:
    return _document("discovery/auth.md", MARKDOWN)


@require_safe
@cache_control(public=True, max_age=300)
def llms_txt(request: HttpRequest) -> HttpResponse:
    return _document("discovery/llms.txt", TEXT)
