"""What every page may show about the claim this browser is in the middle of."""

from collections.abc import Callable

from django.http import HttpRequest
from django.utils import timezone

from accounts import selectors
from accounts.models import ClaimLink
from accounts.services import claims
from accounts.views import CLAIM_KEY


def held_claim(request: HttpRequest) -> dict[str, Callable[[], ClaimLink | None]]:
    """``held_claim``: the open claim link held in this session, or None.
    Looked up only by a page that asks (the sign-in pages, for the countdown)."""

    def lookup() -> ClaimLink | None:
        key = request.session.get(CLAIM_KEY) if hasattr(request, "session") else None
        link = selectors.claim_link_for_key(key=key) if key else None
        user = request.user if request.user.is_authenticated else None
        status = claims.claim_status(
            link=link,
            user=user,
            now=timezone.now(),
            declined=bool(getattr(link, "declined", False)),
        )
        return link if status is claims.ClaimStatus.OPEN else None

    return {"held_claim": lookup}
