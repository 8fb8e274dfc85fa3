"""The one edge in front of everything: HAProxy, configured from settings,
serving the portal (to its gunicorn pools) and the preview domain (to each
Worker's own socket)."""
