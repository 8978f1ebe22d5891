"""The projector: builds MongoDB read models from the event log, outside the request path.

- ``projection`` / ``projections/``: what a read model computes (pure code, event -> writes).
- ``runner``: one filtered catch-up subscription, batches (``batching``), the pure fold of a
  batch into documents (``fold``), compare-and-set writes (``dispatch``, ``failures``),
  checkpoints (``checkpoint_store``), outage retries.
- ``lifecycle``: a projection version's states, the transitions between them and who may
  make each (the daemon, a rebuild, an operator); the only place that decides a state.
- ``daemon``: feeds the active version of every projection (``projector run``).
- ``rebuild``: builds a new version next to the live one and switches (``version_registry``).
- ``status``, ``dead_letters``: what operators (CLI, HTTP admin API) see and do.
- ``cli`` / ``composition``: entry points; the only place that builds clients.
"""
