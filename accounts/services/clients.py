"""Which client an agent used, as it names itself in its User-Agent.

wrangler makes its two provisioning calls through Node's HTTP library, which
says only "undici"; its account calls say "wrangler/4.164.0". The account
keeps the first name that is not a bare HTTP library."""

from accounts.models import CloudAccount

# User-Agents that name an HTTP library, not the program that used it.
HTTP_LIBRARIES = frozenset(
    {"undici", "node", "node-fetch", "axios", "got", "python-urllib", "okhttp"}
)


def _product(user_agent: str) -> str:
    return user_agent.strip().split(" ", 1)[0].split("/", 1)[0].lower()


def names_a_library(user_agent: str) -> bool:
    return _product(user_agent) in HTTP_LIBRARIES or not user_agent.strip()


def client_name(user_agent: str) -> str:
    """ "wrangler/4.164.0 (node)" as people write it: "wrangler 4.164.0";
    nothing for a bare HTTP library, which says nothing about the agent."""
    if names_a_library(user_agent):
        return ""
    first = user_agent.strip().split(" ", 1)[0]
    return first.replace("/", " ", 1)


def note_agent_client(*, account: CloudAccount, user_agent: str) -> None:
    """Keep ``user_agent`` as the account's client if what it holds so far
    names only an HTTP library. Costs nothing once a real name is known."""
    if not names_a_library(account.user_agent) or names_a_library(user_agent):
        return
    if account.state != CloudAccount.State.PENDING:
        return
    user_agent = user_agent[:300]
    CloudAccount.objects.filter(pk=account.pk, user_agent=account.user_agent).update(
        user_agent=user_agent
    )
    account.user_agent = user_agent
