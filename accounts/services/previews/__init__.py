"""Live previews: every deployed Worker runs in workerd on its own preview host.

``capnp`` and ``render`` turn a Worker version into a workerd config (pure);
the other modules read the database, authorise binding calls and talk to the
runtime that ``manage.py preview_runtime`` starts (``accounts.previews``).
"""
