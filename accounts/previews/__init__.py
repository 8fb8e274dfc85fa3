"""The preview runtime: a supervisor that keeps one workerd process per active
Worker, the routes the edge (``accounts.edge``) sends visitors by, and the
internal endpoints their bindings call. Started by ``manage.py preview_runtime``."""
