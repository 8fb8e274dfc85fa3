"""HAProxy's configuration for the edge, rendered from settings.

Routing to Workers needs no reload: each runtime (CLAIMPORTAL_EDGE_RUNTIMES)
maps the preview hosts it holds (its ``runtimes/<name>/hosts.map``, changed at
run time over the admin socket) to one of its fixed number of slot backends,
and slot ``n``'s server is its ``slots/n.sock``, a symlink that runtime points
at the Worker's own socket. A host in no runtime's map goes to the shared
pages backend (any runtime's pages), which says why nothing answers there.
"""

import resource
import shutil
from pathlib import Path

from django.conf import settings

from preview_runtime.pages import error_file
from preview_runtime.routes import EdgePaths
from preview_runtime.services.runtime_settings import edge_slots as slot_count


def edge_paths() -> EdgePaths:
    """The edge's folder (CLAIMPORTAL_EDGE_DIR)."""
    return EdgePaths(Path(settings.CLAIMPORTAL_EDGE_DIR))


def haproxy_binary() -> str:
    found = shutil.which(settings.CLAIMPORTAL_HAPROXY_BIN) or shutil.which(
        settings.CLAIMPORTAL_HAPROXY_BIN, path="/usr/sbin:/usr/local/sbin"
    )
    if found is None:
        raise FileNotFoundError(
            "HAProxy is not installed (Debian: apt-get install haproxy)."
        )
    return found


def max_connections() -> int:
    """The setting, within what this host lets HAProxy open (two descriptors
    a connection: client and server)."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    wanted = settings.CLAIMPORTAL_EDGE_MAXCONN
    if hard == resource.RLIM_INFINITY:
        return wanted
    slots = slot_count() * len(runtimes())
    return max(64, min(wanted, (hard - 2 * slots - 100) // 2))


def _address(upstream: str) -> str:
    """gunicorn's ``unix:/path`` or ``host:port`` as HAProxy writes it."""
    return "unix@" + upstream[5:] if upstream.startswith("unix:") else upstream


def runtimes() -> list[str]:
    """The names of the runtimes the edge routes to."""
    return list(dict.fromkeys(settings.CLAIMPORTAL_EDGE_RUNTIMES))


def render(*, paths: EdgePaths, binds: list[str]) -> str:
    portal = settings.CLAIMPORTAL_EDGE_PORTAL
    api = settings.CLAIMPORTAL_EDGE_API or portal
    domain = settings.CLAIMPORTAL_PREVIEW_DOMAIN.lower()
    request_timeout = settings.CLAIMPORTAL_PREVIEW_REQUEST_TIMEOUT_SECONDS
    errors = paths.errors
    lines = [
        "global",
        f"    maxconn {max_connections()}",
        f"    nbthread {settings.CLAIMPORTAL_EDGE_THREADS}",
        f"    stats socket {paths.admin} mode 600 level admin",
        # Headers up to about 31 KiB; a larger head gets 431 (or 400).
        "    tune.bufsize 32768",
        # Short requests first when many connections are busy (bench_edge).
        "    tune.sched.low-latency on",
        "    hard-stop-after 30s",
        # Each runtime hears of its own backends' failures.
        *(
            f"    log unix@{paths.runtime(name).log} len 1024 format raw local0"
            for name in runtimes()
        ),
        "",
        "defaults",
        "    mode http",
        "    log global",
        "    option dontlog-normal",  # the supervisor hears of failures only
        '    log-format "%b %tsc %ST"',
        "    option http-keep-alive",
        "    option http-no-delay",  # each answer out as it comes (bench_edge)
        "    timeout http-request 10s",  # the whole head (and a buffered body)
        "    timeout http-keep-alive 10s",
        "    timeout client 30s",  # a client silent this long mid-request
        "    timeout client-fin 5s",
        "    timeout connect 5s",
        "    timeout server 60s",
        "    timeout tunnel 1h",  # an accepted WebSocket
        f"    errorfile 400 {errors}/bad.http",
        f"    errorfile 408 {errors}/slow.http",
        f"    errorfile 503 {errors}/unavailable.http",
        "",
        "frontend web",
        *(f"    bind {bind}" for bind in binds),
        "    http-request set-var(txn.host) req.hdr(host),host_only,lower",
        f"    acl preview var(txn.host) -m end .{domain}",
        "    http-request set-header X-Forwarded-For %[src]",
        # What Workers read as the client (and `wrangler tail --ip` matches):
        # the address the edge saw, never what a client sent.
        "    http-request set-header CF-Connecting-IP %[src]",
        "    http-request set-header X-Forwarded-Proto %[ssl_fc,iif(https,http)]",
        # The runtime whose map has the host, else the shared pages.
        *(
            f"    use_backend %[var(txn.host),map({hosts})] if preview "
            f"{{ var(txn.host),map({hosts}) -m found }}"
            for hosts in (paths.runtime(name).hosts for name in runtimes())
        ),
        "    use_backend pages if preview",
        "    use_backend api if { path /client/v4 } || { path_beg /client/v4/ }",
        "    use_backend tail if { path_beg /tail/ }",  # wrangler tail's WebSockets
        "    default_backend portal",
        "",
        "backend portal",
        "    option http-buffer-request",  # gunicorn sees only whole requests
        # A kept-alive connection gunicorn closed as a request went out.
        "    retries 2",
        "    retry-on conn-failure empty-response",
        f"    errorfile 503 {errors}/portal.http",
        f"    server pages {_address(portal)}",
        "",
        "backend api",
        "    option http-buffer-request",
        "    retries 2",
        "    retry-on conn-failure empty-response",
        f"    errorfile 503 {errors}/portal.http",
        f"    server api {_address(api)}",
        "",
        "backend tail",
        f"    server tail {_address(settings.CLAIMPORTAL_EDGE_TAIL)}",
        "",
        "backend pages",
        "    http-request set-header X-Forwarded-Host %[req.hdr(host)]",
        # Any runtime's pages say why nothing answers on a host no one holds.
        "    retries 3",
        "    option redispatch 1",
        "    retry-on conn-failure",
        *(f"    server {name} unix@{paths.runtime(name).pages}" for name in runtimes()),
        *(
            line
            for name in runtimes()
            for line in (
                "",
                f"backend {paths.runtime(name).pages_backend}",
                "    http-request set-header X-Forwarded-Host %[req.hdr(host)]",
                f"    server pages unix@{paths.runtime(name).pages}",
            )
        ),
        "",
        "defaults workers",
        "    mode http",
        "    log global",
        "    option dontlog-normal",
        '    log-format "%b %tsc %ST"',
        "    option http-keep-alive",
        "    option http-no-delay",  # each answer out as it comes (bench_edge)
        # A request reuses only its own client's connection to a Worker: an
        # idle pooled one may be the replaced process closing it as it drains,
        # and a client's first request lost on it was a 502 (a kept-alive
        # client's later one is closed unanswered, which clients retry).
        "    http-reuse safe",
        "    timeout http-request 10s",
        "    timeout http-keep-alive 10s",
        "    timeout client 30s",
        "    timeout client-fin 5s",
        "    timeout connect 5s",
        f"    timeout server {request_timeout}s",
        "    timeout tunnel 1h",
        # A Worker that dropped a request unanswered (it crashed) gets it once
        # more, from its restarted process, when nothing of it reached it yet
        # or it carried no body.
        "    retries 2",
        "    retry-on conn-failure empty-response",
        f"    errorfile 400 {errors}/bad.http",
        f"    errorfile 408 {errors}/slow.http",
        f"    errorfile 502 {errors}/crashed.http",
        f"    errorfile 503 {errors}/unavailable.http",
        f"    errorfile 504 {errors}/stuck.http",
    ]
    for name in runtimes():
        at = paths.runtime(name)
        for number in range(slot_count()):
            lines += [
                "",
                f"backend {at.backend(number)}",
                f"    server w unix@{at.slot(number)}",
            ]
    return "\n".join(lines) + "\n"


def write(*, paths: EdgePaths, binds: list[str]) -> None:
    """The configuration and what it names, ready for HAProxy to start."""
    paths.root.mkdir(parents=True, exist_ok=True)
    for name in runtimes():
        (paths.runtime(name).root / "slots").mkdir(parents=True, exist_ok=True)
        if not paths.runtime(name).hosts.exists():
            paths.runtime(name).hosts.write_text("")
    paths.errors.mkdir(exist_ok=True)
    for kind in ("bad", "slow", "unavailable", "crashed", "stuck", "portal"):
        (paths.errors / f"{kind}.http").write_bytes(error_file(kind))
    paths.config.write_text(render(paths=paths, binds=binds))
