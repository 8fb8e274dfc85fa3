"""The preview runtime: every deployed Worker in its own workerd, behind the
edge. Started by ``manage.py preview_runtime``.

The core (this package's top-level modules) does not import Django; it is
told its knobs (``config.RuntimeConfig``) and given what it reads from the
database as plain calls (``supervisor.Lookups``). Where each thing lives:

- ``supervisor``: the loop and a Worker's lifecycle (start, swap, idle stop,
  wake on visit, crash restart, CPU-pinned stop), the control commands;
- ``process``: starting and stopping one workerd, its sockets, its files;
- ``sandbox``: cells (UID, mount namespace, no network) and cgroups;
- ``render`` and ``capnp``: a Worker version as a workerd config (pure);
- ``routes``: the routing table the edge (HAProxy) sends hosts by;
- ``pages``: the edge's own pages (why nothing answers on a host);
- ``gateway``: the binding protocol's front door, shared out by account;
- ``control``: the runtime's own socket (apply, reconcile, status, invoke);
- ``targets``: the desired state as data; ``cron``: cron expressions;
- ``js/``: our helper Workers (bridge, banner, trigger, tail ...).

The Django side is thin: ``services/`` reads and writes rows (the desired
state, specs and binding credentials, identities, queue delivery and cron,
what pages show) and wires the core up (``runtime_settings``, ``wiring``);
``endpoints/`` holds the binding endpoints Workers call through the gateway.
"""
