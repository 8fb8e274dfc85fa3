"""The preview runtime: a supervisor that keeps one workerd process per active
Worker, an edge router in front of them, and the internal endpoints their
bindings call. Started by ``manage.py preview_runtime``."""
