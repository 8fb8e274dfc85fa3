"""How pages name the client an agent used."""

from django import template

from accounts.services.clients import client_name as _client_name

register = template.Library()


@register.filter
def client_name(user_agent: str) -> str:
    return _client_name(user_agent or "")
