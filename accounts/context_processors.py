"""What every page may show about the claim this browser is in the middle of."""

from collections.abc import Callable

from django.http import HttpRequest

from accounts.models import ClaimLink
from accounts.views import open_held_claim


def held_claim(request: HttpRequest) -> dict[str, Callable[[], ClaimLink | None]]:
    """``held_claim``: the open claim link this browser holds, or None.
    Looked up only by a page that asks (the sign-in pages, for the countdown)."""
    return {"held_claim": lambda: open_held_claim(request)}
