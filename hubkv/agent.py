"""KV for agents: a scoped capability a model can call, read-only by default.

A :class:`KVCapability` is what one model may do with one store: read (and,
only when ``writable=True``, write) the keys under one prefix. It renders its
tools for the common tool-calling formats and runs the model's calls; every
call returns a JSON-serializable ``dict``, never an exception for a model's
mistake, so an agent loop can hand any answer straight back to the model.

>>> from hubkv import KV
>>> store = KV("memory")
>>> store.set("users:42:profile", {"name": "Ada"})
>>> store.set("users:7:profile", {"name": "Bob"})
>>> kv = KVCapability(store, "users:42:")
>>> [tool["function"]["name"] for tool in kv.openai_tools()]
['kv_get', 'kv_get_many', 'kv_list_keys', 'kv_has']
>>> kv.call("kv_get", {"key": "profile"})
{'ok': True, 'key': 'profile', 'value': {'name': 'Ada'}}
>>> kv.call("kv_get", {"key": "../7:profile"})["error"]["type"]
'invalid_key'
>>> kv.call("kv_set", {"key": "profile", "value": {}})["error"]["type"]
'read_only'

Scope is enforced by construction: the capability holds only a prefixed view
of the store (a read-only one unless ``writable=True``), so every key a model
names is appended to the prefix and can't reach outside it. Keys are checked
on top of that, so a model gets a clear answer for ``..`` segments, leading
``/``, control and invisible characters, Unicode look-alikes of those, and
keys that repeat the scope's prefix.

Error types a model may see (``result["error"]["type"]``): ``unknown_tool``,
``invalid_arguments``, ``invalid_key``, ``invalid_value``, ``not_found``,
``value_too_large``, ``read_only``, ``not_allowed``, ``limit_exceeded`` and
``storage_error`` (the store failed; the message names no location or secret).
"""

from __future__ import annotations

import bisect
import re
import reprlib
import threading
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import msgspec

from . import codec
from .errors import (
    AuthenticationError,
    ConfigError,
    DriverError,
    InvalidKeyError,
    InvalidTTLError,
    KVError,
    ReadOnlyError,
    SerializationError,
    ValueTooLargeError,
)
from .store import KV, MAX_KEY_BYTES, MAX_TTL

__all__ = [
    "KVCapability",
    "Tool",
    "ToolCall",
    "DEFAULT_MAX_VALUE_BYTES",
    "DEFAULT_MAX_KEYS_PER_PAGE",
    "MAX_VALUE_DEPTH",
]

#: Largest value (as JSON) a model may write or read by default: 64 KiB.
DEFAULT_MAX_VALUE_BYTES = 64 * 1024
#: Most keys one ``list_keys`` page returns, and most keys one ``get_many`` asks for.
DEFAULT_MAX_KEYS_PER_PAGE = 100
#: Deepest nesting of lists and objects a model may store.
MAX_VALUE_DEPTH = 64

#: A scope prefix must end with one of these, so "users:42" can't reach "users:420:".
_SCOPE_ENDINGS = (":", "/")
_SEGMENT_SEPARATORS = re.compile(r"[:/\\]")
# Unicode categories refused in a model's keys: controls, invisible format
# characters (zero-width, bidi overrides), surrogates, line/paragraph separators.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_NAMESPACE = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,39}\Z")
_JSON_SCALARS = (str, int, float, bool, type(None))
_MISSING = object()
_ONLY_JSON = (
    "only JSON (objects with string keys, arrays, strings, finite numbers, true, false, null) "
    "can be stored"
)

ParamKind = Literal["key", "keys", "text", "limit", "ttl", "json"]


@dataclass(frozen=True)
class Tool:
    """One tool a capability offers: its name, description and JSON Schema.

    ``read_only`` tools never write; ``destructive`` ones may remove data.
    """

    name: str
    description: str
    input_schema: dict[str, Any]
    read_only: bool
    destructive: bool = False
    idempotent: bool = True


@dataclass(frozen=True)
class ToolCall:
    """What the audit hook receives for every call: the call and its outcome.

    ``arguments`` are exactly what was passed to :meth:`KVCapability.call`;
    ``result`` is what the model gets back; ``error`` is the hubkv exception
    behind an error result, when there was one (e.g. the
    :class:`~hubkv.errors.ReadOnlyError` or :class:`~hubkv.errors.DriverError`,
    with its full message for the operator).
    """

    name: object
    arguments: object
    result: dict[str, Any]
    scope: str
    error: KVError | None = None


class _ToolError(Exception):
    """A model's mistake, turned into an error result by ``call``."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


@dataclass(frozen=True)
class _Param:
    kind: ParamKind
    description: str
    required: bool = True


@dataclass(frozen=True)
class _Spec:
    name: str
    description: str
    params: dict[str, _Param]
    run: Callable[[dict[str, Any]], dict[str, Any]]
    writes: bool = False
    destructive: bool = False
    idempotent: bool = True


class KVCapability:
    """What a model may do with one store, confined to one prefix.

    ``KVCapability(store, "users:42:")`` offers read tools (get, get_many,
    list_keys with pagination, has) on the keys under ``users:42:``; keys are
    relative (the model says ``profile``, the store holds
    ``users:42:profile``). ``writable=True`` adds set (with an optional TTL)
    and delete; ``allow_clear=True`` (with ``writable``) adds clear. Tool
    names are ``{namespace}_get`` and so on (default namespace ``kv``).

    Limits: ``max_value_bytes`` (largest value as JSON a model may write or
    read), ``max_keys_per_page`` (keys per ``list_keys`` page and per
    ``get_many`` call) and ``max_calls`` (calls this capability answers;
    ``None`` for no limit). ``audit`` is called with a :class:`ToolCall` for
    every call, its outcome included; an exception it raises propagates.

    >>> from hubkv import KV
    >>> store = KV("memory")
    >>> notes = KVCapability(store, "agents:notes:", writable=True, max_calls=10)
    >>> notes.call("kv_set", {"key": "todo", "value": ["ship it"], "ttl_seconds": 3600})
    {'ok': True, 'key': 'todo'}
    >>> store.get("agents:notes:todo")
    ['ship it']
    >>> notes.call("kv_list_keys", {})
    {'ok': True, 'keys': ['todo'], 'next_cursor': None}
    >>> notes.remaining_calls
    8

    Raises :class:`ConfigError` for a prefix that doesn't end with ``:`` or
    ``/``, ``allow_clear`` without ``writable`` or a bad limit, and
    :class:`ReadOnlyError` for ``writable=True`` on a read-only store.
    """

    def __init__(
        self,
        store: KV,
        prefix: str,
        *,
        writable: bool = False,
        allow_clear: bool = False,
        max_value_bytes: int = DEFAULT_MAX_VALUE_BYTES,
        max_keys_per_page: int = DEFAULT_MAX_KEYS_PER_PAGE,
        max_calls: int | None = None,
        audit: Callable[[ToolCall], None] | None = None,
        namespace: str = "kv",
    ) -> None:
        if not isinstance(store, KV):
            raise ConfigError(f"KVCapability needs a hubkv.KV store, not {type(store).__name__}")
        view = store.prefixed(prefix)  # validates the prefix (type, characters, not empty)
        if not prefix.endswith(_SCOPE_ENDINGS):
            raise ConfigError(
                f"a capability's prefix must end with ':' or '/' (got {prefix!r}), so that "
                f"'users:42' can't reach 'users:420:'; use {prefix + ':'!r}"
            )
        if allow_clear and not writable:
            raise ConfigError("allow_clear=True needs writable=True: clearing is a write")
        if writable and view.is_read_only:
            raise ReadOnlyError(
                "writable=True needs a writable store, but this store is read-only; "
                "open it without read_only=True (and with a read-write credential)"
            )
        _check_limit("max_value_bytes", max_value_bytes)
        _check_limit("max_keys_per_page", max_keys_per_page)
        if max_calls is not None:
            _check_limit("max_calls", max_calls)
        if not isinstance(namespace, str) or not _NAMESPACE.match(namespace):
            raise ConfigError(
                f"namespace must be a letter then up to 39 letters, digits, '_' or '-', "
                f"got {namespace!r}"
            )
        room = MAX_KEY_BYTES - len(view.prefix.encode("utf-8"))
        if room < 1:
            raise ConfigError(f"the prefix {prefix!r} leaves no room for keys (512 bytes in all)")
        # The only handle on the store this object keeps: a view confined to
        # the prefix, read-only unless asked otherwise.
        self._view = view if writable else view.read_only()
        self._writable = writable
        self._allow_clear = allow_clear
        self._room = room
        self._max_value_bytes = max_value_bytes
        self._max_keys = max_keys_per_page
        self._max_calls = max_calls
        self._calls = 0
        self._lock = threading.Lock()
        self._audit = audit
        self._namespace = namespace
        self._specs = {spec.name: spec for spec in self._build_specs()}
        self._tools = tuple(self._tool(spec) for spec in self._specs.values() if self._offers(spec))

    # -- what the model sees ---------------------------------------------

    @property
    def scope(self) -> str:
        """The full prefix every key of this capability lives under."""
        return self._view.prefix

    @property
    def writable(self) -> bool:
        """Whether write tools are offered (and writes allowed)."""
        return self._writable

    @property
    def remaining_calls(self) -> int | None:
        """Calls left before ``limit_exceeded`` answers; ``None`` without a limit."""
        if self._max_calls is None:
            return None
        with self._lock:
            return max(self._max_calls - self._calls, 0)

    @property
    def tools(self) -> tuple[Tool, ...]:
        """The tools offered: read tools, then write tools when writable."""
        return self._tools

    def openai_tools(self) -> list[dict[str, Any]]:
        """Tool definitions in OpenAI style: ``{"type": "function", "function": {...}}``."""
        return [
            {
                "type": "function",
                "function": {
                    "name": tool.name,
                    "description": tool.description,
                    "parameters": tool.input_schema,
                },
            }
            for tool in self._tools
        ]

    def anthropic_tools(self) -> list[dict[str, Any]]:
        """Tool definitions in Anthropic style: ``{"name", "description", "input_schema"}``."""
        return [
            {"name": tool.name, "description": tool.description, "input_schema": tool.input_schema}
            for tool in self._tools
        ]

    def mcp_tools(self) -> list[dict[str, Any]]:
        """Tool definitions as MCP ``tools/list`` entries, with behaviour annotations.

        >>> from hubkv import KV
        >>> KVCapability(KV("memory"), "a:").mcp_tools()[0]["annotations"]["readOnlyHint"]
        True
        """
        return [
            {
                "name": tool.name,
                "description": tool.description,
                "inputSchema": tool.input_schema,
                "annotations": {
                    "readOnlyHint": tool.read_only,
                    "destructiveHint": tool.destructive,
                    "idempotentHint": tool.idempotent,
                    "openWorldHint": False,
                },
            }
            for tool in self._tools
        ]

    # -- running calls ---------------------------------------------------

    def call(
        self, name: str, arguments: Mapping[str, Any] | str | bytes | None = None
    ) -> dict[str, Any]:
        """Run one tool call; return ``{"ok": True, ...}`` or ``{"ok": False, "error": ...}``.

        ``arguments`` is a mapping, a JSON object as text (as OpenAI sends
        it) or ``None``. Only bugs raise; a model's mistake, a refused write
        and a failing store are answers.

        >>> from hubkv import KV
        >>> kv = KVCapability(KV("memory"), "users:42:")
        >>> kv.call("kv_get", '{"key": "missing"}')["error"]["type"]
        'not_found'
        >>> kv.call("kv_drop_tables", {})["error"]["message"]
        "no tool 'kv_drop_tables'; the tools are kv_get, kv_get_many, kv_list_keys, kv_has"
        """
        error: KVError | None = None
        try:
            result = {"ok": True, **self._run(name, arguments)}
        except _ToolError as exc:
            result = _error(exc.kind, exc.message)
        except KVError as exc:
            error = exc
            result = self._error_result(exc)
        if self._audit is not None:
            self._audit(ToolCall(name, arguments, result, self.scope, error))
        return result

    def _run(self, name: object, arguments: object) -> dict[str, Any]:
        with self._lock:
            if self._max_calls is not None and self._calls >= self._max_calls:
                raise _ToolError(
                    "limit_exceeded",
                    f"this capability's limit of {self._max_calls} calls is used up; "
                    "stop calling KV tools and finish with what you have",
                )
            self._calls += 1
        spec = self._specs.get(name) if isinstance(name, str) else None
        if spec is None:
            offered = ", ".join(tool.name for tool in self._tools)
            raise _ToolError("unknown_tool", f"no tool {_clip(name)}; the tools are {offered}")
        if spec.writes and not self._writable:
            # The view would refuse too; refusing here answers before any parsing.
            raise ReadOnlyError(f"{spec.name}: this capability is read-only")
        if not self._offers(spec):
            raise _ToolError("not_allowed", f"{spec.name} is not enabled for this capability")
        return spec.run(_parse_arguments(spec, arguments))

    def _offers(self, spec: _Spec) -> bool:
        if spec.name == self._name("clear"):
            return self._allow_clear
        return self._writable or not spec.writes

    def _error_result(self, exc: KVError) -> dict[str, Any]:
        # Messages of errors raised by the store name full keys or the store's
        # location: the model gets a message of its own (the audit hook gets exc).
        if isinstance(exc, ReadOnlyError):
            return _error(
                "read_only", "this capability is read-only: writes are refused, reads are allowed"
            )
        if isinstance(exc, AuthenticationError):
            return _error("storage_error", "the store refused its credentials; retrying won't help")
        if isinstance(exc, DriverError):
            return _error(
                "storage_error",
                f"the store failed ({type(exc).__name__}); try again later, or go on without it",
            )
        if isinstance(exc, ValueTooLargeError):
            return _error("value_too_large", "the value is larger than the store accepts")
        if isinstance(exc, InvalidKeyError):
            return _error("invalid_key", "the key is not valid in this store")
        if isinstance(exc, InvalidTTLError):
            return _error("invalid_arguments", "ttl_seconds is not valid in this store")
        if isinstance(exc, SerializationError):
            return _error("invalid_value", "the stored value can't be read as JSON")
        return _error("storage_error", f"the store refused the call ({type(exc).__name__})")

    # -- the tools -------------------------------------------------------

    def _name(self, base: str) -> str:
        return f"{self._namespace}_{base}"

    def _build_specs(self) -> list[_Spec]:
        key = _Param("key", "A key relative to this store's scope, e.g. 'profile' or 'notes:1'.")
        scope_note = "Keys are relative names within one scoped store."
        return [
            _Spec(
                self._name("get"),
                f"Read the JSON value stored under a key. {scope_note}",
                {"key": key},
                self._get,
            ),
            _Spec(
                self._name("get_many"),
                f"Read the values of several keys at once (at most {self._max_keys}); "
                "missing keys are listed under 'missing'.",
                {"keys": _Param("keys", "The keys to read.")},
                self._get_many,
            ),
            _Spec(
                self._name("list_keys"),
                "List keys in sorted order, one page at a time; pass next_cursor back to get "
                "the next page (it is null on the last page).",
                {
                    "prefix": _Param(
                        "text", "Only keys starting with this text (default: all).", False
                    ),
                    "cursor": _Param("text", "next_cursor from the previous page.", False),
                    "limit": _Param("limit", f"Keys per page (default {self._max_keys}).", False),
                },
                self._list_keys,
            ),
            _Spec(
                self._name("has"),
                "Check whether a key exists.",
                {"key": key},
                self._has,
            ),
            _Spec(
                self._name("set"),
                f"Store a JSON value under a key, replacing any value there (at most "
                f"{self._max_value_bytes} bytes as JSON). {scope_note}",
                {
                    "key": key,
                    "value": _Param("json", "Any JSON value: object, array, string, number, ..."),
                    "ttl_seconds": _Param(
                        "ttl", "Seconds until the key expires (default: never).", False
                    ),
                },
                self._set,
                writes=True,
            ),
            _Spec(
                self._name("delete"),
                "Remove a key; removing a missing key is not an error.",
                {"key": key},
                self._delete,
                writes=True,
                destructive=True,
            ),
            _Spec(
                self._name("clear"),
                "Remove every key starting with a prefix; '' removes every key in this store. "
                "Returns how many keys were removed.",
                {"prefix": _Param("text", "Remove the keys starting with this text.")},
                self._clear,
                writes=True,
                destructive=True,
                idempotent=False,
            ),
        ]

    def _tool(self, spec: _Spec) -> Tool:
        properties = {name: self._schema(param) for name, param in spec.params.items()}
        required = [name for name, param in spec.params.items() if param.required]
        schema: dict[str, Any] = {"type": "object", "properties": properties}
        if required:
            schema["required"] = required
        schema["additionalProperties"] = False
        return Tool(
            spec.name,
            spec.description,
            schema,
            read_only=not spec.writes,
            destructive=spec.destructive,
            idempotent=spec.idempotent,
        )

    def _schema(self, param: _Param) -> dict[str, Any]:
        kind = param.kind
        schema: dict[str, Any]
        if kind == "key":
            schema = {"type": "string", "minLength": 1}
        elif kind == "keys":
            schema = {
                "type": "array",
                "items": {"type": "string", "minLength": 1},
                "minItems": 1,
                "maxItems": self._max_keys,
            }
        elif kind == "text":
            schema = {"type": "string"}
        elif kind == "limit":
            schema = {"type": "integer", "minimum": 1, "maximum": self._max_keys}
        elif kind == "ttl":
            schema = {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_TTL}
        else:
            schema = {"type": ["object", "array", "string", "number", "boolean", "null"]}
        schema["description"] = param.description
        return schema

    def _get(self, args: dict[str, Any]) -> dict[str, Any]:
        key = self._key(args["key"])
        value = self._view.get(key, _MISSING)
        if value is _MISSING:
            raise _ToolError(
                "not_found",
                f"no key {key!r}; call {self._name('list_keys')} to see the keys",
            )
        self._check_size(value, key, "read")
        return {"key": key, "value": value}

    def _get_many(self, args: dict[str, Any]) -> dict[str, Any]:
        keys = args["keys"]
        if not keys:
            raise _ToolError("invalid_arguments", "keys must name at least one key")
        if len(keys) > self._max_keys:
            raise _ToolError(
                "invalid_arguments",
                f"at most {self._max_keys} keys per call, got {len(keys)}; split the call",
            )
        keys = [self._key(key) for key in keys]
        found = self._view.get_many(keys)
        values: dict[str, Any] = {}
        too_large: list[str] = []
        for key, value in found.items():
            if _json_size(value) > self._max_value_bytes:
                too_large.append(key)
            else:
                values[key] = value
        missing = [key for key in dict.fromkeys(keys) if key not in found]
        return {"values": values, "missing": missing, "too_large": too_large}

    def _list_keys(self, args: dict[str, Any]) -> dict[str, Any]:
        prefix = self._key(args.get("prefix", ""), "prefix", allow_empty=True)
        limit = args.get("limit", self._max_keys)
        if limit > self._max_keys:
            raise _ToolError(
                "invalid_arguments",
                f"limit must be at most {self._max_keys}; page through with next_cursor",
            )
        keys = self._view.keys(prefix)
        if keys and not keys[0]:
            del keys[0]  # a key equal to the scope itself: not addressable as a relative key
        cursor = args.get("cursor")
        start = bisect.bisect_right(keys, cursor) if cursor else 0
        page = keys[start : start + limit]
        more = start + limit < len(keys)
        return {"keys": page, "next_cursor": page[-1] if more else None}

    def _has(self, args: dict[str, Any]) -> dict[str, Any]:
        key = self._key(args["key"])
        return {"key": key, "exists": self._view.has(key)}

    def _set(self, args: dict[str, Any]) -> dict[str, Any]:
        key = self._key(args["key"])
        value = args["value"]
        _check_json(value)  # first: it bounds the depth that encoding (for the size) recurses
        self._check_size(value, key, "write")
        self._view.set(key, value, ttl=args.get("ttl_seconds"))
        return {"key": key}

    def _delete(self, args: dict[str, Any]) -> dict[str, Any]:
        key = self._key(args["key"])
        self._view.delete(key)
        return {"key": key}

    def _clear(self, args: dict[str, Any]) -> dict[str, Any]:
        prefix = self._key(args["prefix"], "prefix", allow_empty=True)
        return {"removed": self._view.clear(prefix)}

    # -- checks ----------------------------------------------------------

    def _key(self, text: str, what: str = "key", *, allow_empty: bool = False) -> str:
        """``text`` if it is a valid relative key (or prefix), else a ``invalid_key`` error."""
        if not text:
            if allow_empty:
                return text
            raise _ToolError("invalid_key", f"a {what} must not be empty")
        size = len(text.encode("utf-8", "surrogatepass"))
        if size > self._room:
            raise _ToolError(
                "invalid_key",
                f"the {what} {text[:40]!r}... is {size} bytes of UTF-8; "
                f"at most {self._room} are allowed here",
            )
        for index, char in enumerate(text):
            if unicodedata.category(char) in _REFUSED_CATEGORIES:
                raise _ToolError(
                    "invalid_key",
                    f"the {what} {text!r} has U+{ord(char):04X} at index {index}, a control "
                    "or invisible character; use printable characters",
                )
        if text.startswith(self.scope):
            raise _ToolError(
                "invalid_key",
                f"keys are relative to this store: drop the leading {self.scope!r}",
            )
        for form in (text, unicodedata.normalize("NFKC", text)):
            if form.startswith(("/", "\\")):
                raise _ToolError(
                    "invalid_key",
                    f"the {what} {text!r} looks absolute; keys are relative: drop the leading '/'",
                )
            if any(part in (".", "..") for part in _SEGMENT_SEPARATORS.split(form)):
                raise _ToolError(
                    "invalid_key",
                    f"the {what} {text!r} has a '.' or '..' segment; keys can't leave this "
                    "store, use plain names like 'notes:1'",
                )
        return text

    def _check_size(self, value: Any, key: str, action: Literal["read", "write"]) -> None:
        size = _json_size(value)
        if size > self._max_value_bytes:
            raise _ToolError(
                "value_too_large",
                f"the value {'for' if action == 'write' else 'of'} {key!r} is {size} bytes as "
                f"JSON, over this capability's limit of {self._max_value_bytes} to {action}"
                + ("; store smaller pieces under several keys" if action == "write" else ""),
            )


def _error(kind: str, message: str) -> dict[str, Any]:
    return {"ok": False, "error": {"type": kind, "message": message}}


def _check_limit(name: str, value: object) -> None:
    if type(value) is not int or value < 1:
        raise ConfigError(f"{name} must be a positive int, got {value!r}")


def _json_size(value: Any) -> int:
    """Bytes of ``value`` as JSON; an ``invalid_value`` error if it isn't JSON."""
    try:
        return len(codec.encode(value))
    except SerializationError:
        raise _ToolError("invalid_value", f"the value can't be stored: {_ONLY_JSON}") from None


def _check_json(value: Any) -> None:
    """Raise ``invalid_value`` unless ``value`` is made of JSON types only."""
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        kind = type(item)
        if depth > MAX_VALUE_DEPTH and (kind is dict or kind is list):
            raise _ToolError(
                "invalid_value",
                f"the value nests deeper than {MAX_VALUE_DEPTH} levels; flatten it",
            )
        if kind is dict:
            for name, member in item.items():
                if type(name) is not str:
                    raise _ToolError(
                        "invalid_value", f"an object key is not a string; {_ONLY_JSON}"
                    )
                pending.append((member, depth + 1))
        elif kind is list:
            pending.extend((member, depth + 1) for member in item)
        elif kind not in _JSON_SCALARS:
            raise _ToolError(
                "invalid_value",
                f"the value holds a {kind.__name__}; {_ONLY_JSON}",
            )


def _parse_arguments(spec: _Spec, arguments: object) -> dict[str, Any]:
    """The arguments of a call, checked against the tool's schema."""
    if arguments is None:
        arguments = {}
    elif isinstance(arguments, (str, bytes)):
        try:
            arguments = msgspec.json.decode(arguments)
        except (msgspec.DecodeError, UnicodeError) as exc:
            raise _ToolError(
                "invalid_arguments", f"the arguments are not valid JSON: {exc}"
            ) from None
        except RecursionError:  # msgspec recurses once per level of nesting
            raise _ToolError(
                "invalid_arguments",
                "the arguments nest too deeply to decode; values may nest at most "
                f"{MAX_VALUE_DEPTH} levels: flatten them",
            ) from None
    if not isinstance(arguments, Mapping):
        raise _ToolError(
            "invalid_arguments",
            f"the arguments must be a JSON object, not {type(arguments).__name__}",
        )
    unknown = [name for name in arguments if name not in spec.params]
    if unknown:
        raise _ToolError(
            "invalid_arguments",
            f"{spec.name} has no argument {_clip(unknown[0])}; it takes {', '.join(spec.params)}",
        )
    parsed: dict[str, Any] = {}
    for name, param in spec.params.items():
        if name not in arguments or (arguments[name] is None and not param.required):
            if param.required:
                raise _ToolError("invalid_arguments", f"{spec.name} needs the argument {name!r}")
            continue
        value = arguments[name]
        if not _fits(param.kind, value):
            raise _ToolError(
                "invalid_arguments",
                f"{name} must be {_EXPECTED[param.kind]}, not {_describe(value)}",
            )
        parsed[name] = value
    return parsed


_EXPECTED: dict[ParamKind, str] = {
    "key": "a string",
    "keys": "an array of strings",
    "text": "a string",
    "limit": "a positive integer",
    "ttl": f"a number of seconds > 0 and <= {MAX_TTL:.0f}",
    "json": "a JSON value",
}


def _fits(kind: ParamKind, value: object) -> bool:
    if kind in ("key", "text"):
        return type(value) is str
    if kind == "keys":
        return type(value) is list and all(type(item) is str for item in value)
    if isinstance(value, bool):
        return kind == "json"
    if kind == "limit":
        return isinstance(value, int) and value >= 1
    if kind == "ttl":
        return isinstance(value, (int, float)) and 0 < value <= MAX_TTL
    return True


def _describe(value: object) -> str:
    return f"{type(value).__name__} {_clip(value)}"


class _Preview(reprlib.Repr):
    """reprlib's repr, bounded in depth and length, also for ints too long to print."""

    def repr_int(self, x: int, level: int) -> str:
        if x.bit_length() > 256:  # repr() of ints over 4300 digits raises
            return f"<int of {x.bit_length()} bits>"
        return super().repr_int(x, level)


_preview = _Preview()
_preview.maxlevel = 3
_preview.maxstring = _preview.maxlong = _preview.maxother = 60


def _clip(value: object) -> str:
    """A short ``repr(value)``, safe to echo back to a model (and to compute, at any depth)."""
    return _preview.repr(value)
