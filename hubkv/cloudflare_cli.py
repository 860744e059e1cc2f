"""``hubkv cloudflare wrangler``: the Worker binding of the configured namespace.

Prints the ``[[kv_namespaces]]`` table for a ``wrangler.toml``, so the
namespace id lives in one place (hubkv's configuration) and the Worker binds
the same namespace the Python app reaches over the REST API::

    $ export CLOUDFLARE_KV_NAMESPACE_ID=0f2ac74b498b48028cb68387c421e279 \\
        CLOUDFLARE_ACCOUNT_ID=... CLOUDFLARE_API_TOKEN=...
    $ hubkv cloudflare wrangler >> wrangler.toml
    $ hubkv cloudflare wrangler --namespace-id 0f2ac74b498b48028cb68387c421e279 --binding CACHE

Without ``--namespace-id`` the store is the configured one (``--driver`` and
``--option``, ``HUBKV_*``, ``[tool.hubkv]``, the ``CLOUDFLARE_*`` variables)
and must use the Cloudflare KV driver. Nothing is sent to Cloudflare.

Nothing slow is imported here (this module loads on every start).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .cli import EXIT_OK, open_store
from .errors import ConfigError

__all__ = ["add_commands"]


def add_commands(commands: argparse._SubParsersAction[Any]) -> None:
    """Add ``cloudflare wrangler`` to the ``hubkv`` parser."""
    cloudflare = commands.add_parser("cloudflare", help="Cloudflare Workers KV helpers")
    actions = cloudflare.add_subparsers(dest="cloudflare_command", metavar="COMMAND")
    actions.required = True
    wrangler = actions.add_parser(
        "wrangler", help="print the [[kv_namespaces]] table of the namespace for wrangler.toml"
    )
    wrangler.add_argument(
        "--namespace-id", help="the namespace id (default: the configured store's namespace_id)"
    )
    wrangler.add_argument(
        "--binding", help="the name the Worker binds it as (default: the binding option, or KV)"
    )
    wrangler.set_defaults(handler=_wrangler)


def _wrangler(args: argparse.Namespace) -> int:
    from .drivers.cloudflare import CloudflareKVDriver, wrangler_block

    namespace_id, binding = args.namespace_id, args.binding
    if namespace_id is None:
        with open_store(args) as store:
            driver = store.driver
        if not isinstance(driver, CloudflareKVDriver):
            raise ConfigError(
                f"the configured store uses the {driver.name} driver, not "
                f"{CloudflareKVDriver.name}: set CLOUDFLARE_KV_NAMESPACE_ID, "
                "CLOUDFLARE_ACCOUNT_ID and CLOUDFLARE_API_TOKEN (or HUBKV_DRIVER), "
                "or pass --namespace-id"
            )
        namespace_id, binding = driver.namespace_id, binding or driver.binding
    elif not namespace_id.strip():
        raise ConfigError("--namespace-id must not be empty")
    sys.stdout.write(wrangler_block(namespace_id.strip(), binding or "KV"))
    return EXIT_OK
