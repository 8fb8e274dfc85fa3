"""Everything an account holds, as the pages show it, in HTML.

Written in Python rather than as a template: a hundred resources are about a
thousand values, and the template engine's cost per value made their rendering
most of the first view of a claim page. Every value from the inventory goes
through ``_text`` (the escaping Django's templates apply). Names and sizes
only: values of variables and secrets, and Hyperdrive passwords, are never
shown. Pages keep what this renders until the inventory changes
(views.inventory_fragments), so it shows nothing that depends on the moment or
the viewer.
"""

import html
from collections.abc import Iterable
from datetime import datetime

from django.template.defaultfilters import filesizeformat
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe

from accounts.selectors import Inventory, WorkerItem


def _text(value: object) -> str:
    return html.escape(str(value))


def _joined(values: Iterable[object]) -> str:
    return ", ".join(_text(value) for value in values)


def _code(value: str) -> str:
    return f"<code>{value}</code>"


def _local(at: datetime) -> datetime:
    """In the current time zone, as the template filter ``date`` shows it."""
    return timezone.localtime(at) if timezone.is_aware(at) else at


def _table(
    title: str,
    css: str,
    headers: tuple[str, ...],
    rows: list[tuple[str, ...]],
    *,
    badge: bool = True,
) -> str:
    """A heading with its count and a table; each cell is HTML already."""
    count = f' <span class="badge">{len(rows)}</span>' if badge else ""
    head = "".join(f"<th>{header}</th>" for header in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows
    )
    return (
        f"<h3>{title}{count}</h3>\n"
        f'<table class="{css}"><thead><tr>{head}</tr></thead><tbody>\n'
        f"{body}\n</tbody></table>\n"
    )


def _worker(worker: WorkerItem) -> str:
    deployed = "not yet"
    if worker.last_deployed_at:
        at = _local(worker.last_deployed_at)
        deployed = (
            f'<time data-local-time datetime="{at.isoformat()}">'
            f"{at:%Y-%m-%d %H:%M} UTC</time>"
        )
    compatibility = _text(worker.compatibility_date or "none")
    if worker.compatibility_flags:
        compatibility += (
            f' <span class="muted">({_joined(worker.compatibility_flags)})</span>'
        )
    facts = [("Last deployed", deployed), ("Compatibility date", compatibility)]
    if worker.cron_schedules:
        facts.append(("Schedules", _code(_joined(worker.cron_schedules))))
    if worker.asset_files:
        files = worker.asset_files
        facts.append(
            (
                "Static assets",
                f"{files} file{'' if files == 1 else 's'}, "
                f"{filesizeformat(worker.asset_bytes)}",
            )
        )
    if worker.var_names:
        facts.append(("Variables", _code(_joined(worker.var_names))))
    if worker.secret_names:
        facts.append(
            (
                "Secrets",
                f'{_code(_joined(worker.secret_names))} <span class="muted">'
                "(values hidden)</span>",
            )
        )
    parts = [f'<article class="card worker">\n<h4>{_code(_text(worker.name))}</h4>\n']
    if worker.preview_url:
        url = _text(worker.preview_url)
        parts.append(
            f'<p class="preview"><a href="{url}" target="_blank" '
            f'rel="noopener noreferrer">{url}</a></p>\n'
        )
    parts.append('<dl class="facts">\n')
    parts.extend(f"<dt>{term}</dt><dd>{value}</dd>\n" for term, value in facts)
    parts.append("</dl>\n")
    if worker.bindings:
        rows = "".join(
            f"<tr><td>{_code(_text(b.name))}</td><td>{_text(b.kind)}</td>"
            f"<td>{_text(b.target)}</td></tr>"
            for b in worker.bindings
        )
        parts.append(
            '<table class="bindings">\n'
            "<thead><tr><th>Binding</th><th>Type</th><th>Points to</th></tr></thead>\n"
            f"<tbody>{rows}</tbody>\n</table>\n"
        )
    parts.append("</article>\n")
    return "".join(parts)


def inventory_html(inventory: Inventory) -> SafeString:
    parts = ['<section class="inventory">\n']
    headers: tuple[str, ...]
    rows: list[tuple[str, ...]]
    if not inventory.resource_count:
        parts.append(
            '<p class="muted">Nothing has been deployed to this account yet.</p>\n'
        )
    if inventory.workers:
        parts.append(
            f'<h3>Workers <span class="badge">{len(inventory.workers)}</span></h3>\n'
        )
        parts.extend(_worker(worker) for worker in inventory.workers)
    if inventory.kv_namespaces:
        rows = [(_text(kv.name), _text(kv.key_count)) for kv in inventory.kv_namespaces]
        parts.append(_table("KV namespaces", "kv", ("Namespace", "Keys"), rows))
    if inventory.d1_databases:
        rows = [
            (_text(db.name), _text(db.table_count), filesizeformat(db.file_size))
            for db in inventory.d1_databases
        ]
        headers = ("Database", "Tables", "Size")
        parts.append(_table("D1 databases", "d1", headers, rows))
    if inventory.durable_objects:
        rows = [
            (_code(_text(do.name)), _text(do.script))
            for do in inventory.durable_objects
        ]
        headers = ("Class", "Worker")
        parts.append(_table("Durable Object classes", "do", headers, rows))
    if inventory.queues:
        rows = [
            (
                _text(q.name),
                _joined(q.producers) or "none",
                _joined(q.consumers) or "none",
            )
            for q in inventory.queues
        ]
        headers = ("Queue", "Producers", "Consumers")
        parts.append(_table("Queues", "queues", headers, rows))
    if assets := inventory.assets:
        rows = [
            (_text(w.name), _text(w.asset_files), filesizeformat(w.asset_bytes))
            for w in assets
        ]
        headers = ("Worker", "Files", "Total size")
        parts.append(_table("Static assets", "assets", headers, rows, badge=False))
    if inventory.hyperdrive_configs:
        rows = [
            (
                _text(hd.name),
                _text(hd.host) + (f":{_text(hd.port)}" if hd.port else ""),
                _text(hd.database),
                _text(hd.user),
            )
            for hd in inventory.hyperdrive_configs
        ]
        headers = ("Config", "Host", "Database", "User")
        parts.append(_table("Hyperdrive", "hyperdrive", headers, rows))
        parts.append(
            '<p class="small muted">Passwords are kept and transfer with the '
            "account; they are never shown.</p>\n"
        )
    if inventory.certificates:
        rows = [
            (
                _text(c.name),
                _text(c.kind),
                _text(c.issuer),
                f"{_local(c.expires_on):%Y-%m-%d}" if c.expires_on else "",
            )
            for c in inventory.certificates
        ]
        headers = ("Name", "Kind", "Issuer", "Expires")
        parts.append(_table("Certificates", "certificates", headers, rows))
    parts.append("</section>\n")
    # Safe: every value above went through _text or _joined, and the rest is
    # markup written here (format_html per value cost as much as a template).
    return mark_safe("".join(parts))  # noqa: S308
