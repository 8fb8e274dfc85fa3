"""The operations summary on the admin's front page."""

from datetime import timedelta

from django import template
from django.utils import timezone

from accounts.services.moderation import OperationsSummary, operations_summary

register = template.Library()


@register.simple_tag
def current_operations() -> OperationsSummary:
    return operations_summary(now=timezone.now())


@register.filter
def duration(span: timedelta | None) -> str:
    """A time span as people say it: "3 h 12 min", "4 min 5 s"."""
    if span is None:
        return "—"
    seconds = int(span.total_seconds())
    hours, minutes = seconds // 3600, seconds % 3600 // 60
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {seconds % 60} s" if minutes else f"{seconds} s"
