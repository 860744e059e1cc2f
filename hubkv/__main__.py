"""``python -m hubkv``: the command line (see :mod:`hubkv.cli`)."""

from .cli import main

raise SystemExit(main())
