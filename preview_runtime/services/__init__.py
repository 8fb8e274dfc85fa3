"""The runtime's Django side: everything that reads or writes rows.

``state`` (the desired state), ``specs`` (a version's spec, files and binding
credential; the deploy-time start check), ``identity`` (an account's UID),
``bindings`` (who may call which binding), ``delivery`` (queue batches and
crons, run by Celery), ``lifecycle`` (where deploys and purges meet the
runtime), ``status`` (what pages show), ``client`` (asking the running
runtime), ``runtime_settings`` and ``wiring`` (the core's config and lookups,
from settings and models).
"""
