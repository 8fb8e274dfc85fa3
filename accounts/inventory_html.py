"""Everything an account holds, and what its Workers run and did, as the
pages show it, in HTML.

Written in Python rather than as a template: a hundred resources are about a
thousand values, and the template engine's cost per value made their rendering
most of the first view of a claim page. Every text from the inventory is
escaped as Django's templates escape it (``escape``, or ``_text`` for what
may not be a string); numbers are written as they are. Names and sizes
only: values of variables and secrets, and Hyperdrive passwords, are never
shown. It shows nothing that depends on the viewer.
"""

from collections.abc import Iterable
from datetime import datetime
from html import escape

from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe

from accounts.selectors import BINDING_KINDS, Inventory, WorkerActivity, WorkerItem


def _text(value: object) -> str:
    return escape(value if isinstance(value, str) else str(value))


def _joined(values: Iterable[str]) -> str:
    return ", ".join([escape(value) for value in values])


# The labels of the binding types we know, escaped once.
_KIND_HTML = {label: escape(label) for label in BINDING_KINDS.values()}

_SIZE_UNITS = ((1 << 50, "PB"), (1 << 40, "TB"), (1 << 30, "GB"), (1 << 20, "MB"))


def _size(count: int) -> str:
    """What the template filter filesizeformat writes in English ("3.0 KB",
    with a no-break space), without the translation and number-format
    lookups that made it a third of this module's time."""
    if count < 0:
        return "-" + _size(-count)
    if count < 1 << 10:
        return f"{count}\xa0byte{'' if count == 1 else 's'}"
    unit, name = next(
        ((unit, name) for unit, name in _SIZE_UNITS if count >= unit), (1 << 10, "KB")
    )
    return f"{round(count / unit, 1):.1f}\xa0{name}"


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
                f"{files} file{'' if files == 1 else 's'}, {_size(worker.asset_bytes)}",
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
    parts = [f'<article class="card worker">\n<h4>{_code(escape(worker.name))}</h4>\n']
    if worker.preview_url:
        url = escape(worker.preview_url)
        parts.append(
            f'<p class="preview"><a href="{url}" target="_blank" '
            f'rel="noopener noreferrer">{url}</a></p>\n'
        )
    parts.append('<dl class="facts">\n')
    parts.extend(f"<dt>{term}</dt><dd>{value}</dd>\n" for term, value in facts)
    parts.append("</dl>\n")
    if worker.bindings:
        rows = "".join(
            [
                f"<tr><td><code>{escape(b.name)}</code></td>"
                f"<td>{_KIND_HTML.get(b.kind) or escape(b.kind)}</td>"
                f"<td>{escape(b.target)}</td></tr>"
                for b in worker.bindings
            ]
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
        rows = [(_text(kv.name), str(kv.key_count)) for kv in inventory.kv_namespaces]
        parts.append(_table("KV namespaces", "kv", ("Namespace", "Keys"), rows))
    if inventory.d1_databases:
        rows = [
            (_text(db.name), str(db.table_count), _size(db.file_size))
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
            (escape(w.name), str(w.asset_files), _size(w.asset_bytes)) for w in assets
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
    # Safe: every text above went through escape, _text or _joined, and the
    # rest is markup written here (format_html per value cost as much as a
    # template).
    return mark_safe("".join(parts))  # noqa: S308


def activity_html(activity: list[WorkerActivity], source_cap: int) -> SafeString:
    """Each Worker's modules and recent events (selectors.worker_activity),
    as the claim and account pages show them, written here for the reason
    the inventory is. The source and every logged line are shown as text
    (escaped); secret values were redacted from events before they were
    stored."""
    if not activity:
        return mark_safe("")
    parts = ['<section class="activity">\n<h3>Code and recent events</h3>\n']
    for worker in activity:
        name = escape(worker.name)
        parts.append(
            f'<article class="card worker-activity" data-worker="{name}">\n'
            f"<h4><code>{name}</code></h4>\n"
        )
        for m in worker.modules:
            parts.append(
                f'<details class="module">\n<summary><code>{escape(m.name)}</code>'
                f' <span class="muted">{escape(m.content_type)}, {_size(m.size)}'
                "</span></summary>\n"
            )
            if not m.source:
                parts.append('<p class="muted small">Binary module: not shown.</p>\n')
            else:
                parts.append(f'<pre class="source">{escape(m.source)}</pre>\n')
                if m.truncated:
                    parts.append(
                        '<p class="muted small">Shown up to its first '
                        f"{_size(source_cap)}.</p>\n"
                    )
            parts.append("</details>\n")
        if not worker.events:
            parts.append(
                '<p class="muted small">No events yet: open its preview to see '
                "requests and logs here.</p>\n"
            )
        else:
            parts.append('<ol class="events">\n')
            for e in worker.events:
                at = _local(e.at)
                outcome = escape(e.outcome)
                parts.append(
                    f'<li class="event {outcome}"><span class="muted small">'
                    f'<time datetime="{at.isoformat()}">{at:%H:%M:%S}</time></span>'
                    f" <code>{escape(e.summary)}</code>"
                    f' <span class="badge">{outcome}</span>\n'
                )
                if e.lines:
                    lines = "".join(
                        [
                            f'<li><span class="muted">({escape(level)})</span>'
                            f" <code>{escape(text)}</code></li>"
                            for level, text in e.lines
                        ]
                    )
                    parts.append(f'<ul class="lines">{lines}</ul>\n')
                parts.append("</li>\n")
            parts.append("</ol>\n")
        parts.append("</article>\n")
    parts.append("</section>\n")
    # Safe for the reason inventory_html's result is.
    return mark_safe("".join(parts))  # noqa: S308
