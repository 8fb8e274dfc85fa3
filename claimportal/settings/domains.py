"""Where previews may live, checked when production settings load."""

from urllib.parse import urlsplit


def portal_hosts(*, public_base_url: str, allowed_hosts: list[str]) -> list[str]:
    """The names the portal answers on: its public URL's host and every
    ALLOWED_HOSTS entry that names one (a leading dot stands for the domain)."""
    hosts = [urlsplit(public_base_url).hostname or ""]
    hosts += [host.lstrip(".") for host in allowed_hosts if host != "*"]
    return [host.lower().rstrip(".") for host in hosts if host]


def preview_domain_problem(*, preview_domain: str, hosts: list[str]) -> str | None:
    """Why ``preview_domain`` may not hold previews next to a portal on
    ``hosts``, or None. A Worker's host sits under the preview domain, and a
    page may set cookies for any parent of its host: were the portal's host, its
    registrable domain or any parent of them a preview domain, or the portal's
    host a parent of it, a stranger's Worker could plant cookies (a session or
    CSRF token) that the portal then reads."""
    domain = preview_domain.lower().strip(".")
    for host in hosts:
        if host == domain or host.endswith("." + domain):
            return (
                f"CLAIMPORTAL_PREVIEW_DOMAIN {domain!r} is the portal's host "
                f"{host!r} or a parent of it: a stranger's Worker under it could "
                "set cookies that the portal reads. Serve previews from a "
                "registrable domain of their own (e.g. example-previews.com for "
                "a portal on claims.example.com)."
            )
        if domain.endswith("." + host):
            return (
                f"CLAIMPORTAL_PREVIEW_DOMAIN {domain!r} lies under the portal's "
                f"host {host!r}: a stranger's Worker there could set cookies for "
                f"{host!r} that the portal reads. Serve previews from a "
                "registrable domain of their own."
            )
    return None
