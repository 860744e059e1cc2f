"""Benchmarks: hubkv side by side with raw sqlite3, diskcache, sqlitedict, dicts and lmdb.

``python -m benchmarks`` (or ``tox -e bench``) runs every part in one process
and writes ``results.md``, ``results.json``, ``ops.png`` and ``scaling.png``
to ``benchmarks/results/``; ``--quick`` runs small sizes in under a minute.

Modules, one per concern:

- :mod:`benchmarks.stores`: the stores under test behind the same callables;
- :mod:`benchmarks.workload`: keys, values, phases, timed loops, the interleaved run;
- :mod:`benchmarks.concurrent`: several processes writing to one store;
- :mod:`benchmarks.scaling`: the same operations at 10k, 100k and 1M keys;
- :mod:`benchmarks.remote`: remote drivers against local stand-ins, next to official SDKs;
- :mod:`benchmarks.report` and :mod:`benchmarks.charts`: markdown, JSON and PNG charts.
"""
