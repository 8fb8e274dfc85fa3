"""The preview runtime: a supervisor that keeps one workerd process per active
Worker, the edge in front of them (``front``), and the internal endpoints their
bindings call. Started by ``manage.py preview_runtime``."""
