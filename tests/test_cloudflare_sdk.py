"""Cloudflare's official Python SDK against the test Worker, crossed with hubkv.

If the Worker spoke a protocol of its own, the SDK (generated from Cloudflare's
OpenAPI description) would fail here: it creates, lists and deletes
namespaces, writes values as multipart forms with metadata, pages through keys
with cursors, and uses the bulk routes. Data written by either side is read by
the other, so the hubkv driver speaks the same protocol as the SDK.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import cloudflare
import pytest

import hubkv
from tests.standins.cloudflare_kv import CloudflareKV


@pytest.fixture
def client(cloudflare_kv: CloudflareKV) -> Iterator[cloudflare.Cloudflare]:
    sdk = cloudflare.Cloudflare(
        api_token=cloudflare_kv.api_token, base_url=cloudflare_kv.base_url, max_retries=0
    )
    yield sdk
    sdk.close()


@pytest.fixture
def namespace(client: cloudflare.Cloudflare, cloudflare_kv: CloudflareKV) -> Iterator[str]:
    """A namespace the SDK creates (and deletes)."""
    created = client.kv.namespaces.create(account_id=cloudflare_kv.account_id, title="sdk-test")
    assert created is not None and created.title == "sdk-test"
    yield created.id
    client.kv.namespaces.delete(created.id, account_id=cloudflare_kv.account_id)


def test_the_sdk_and_hubkv_share_a_namespace(
    client: cloudflare.Cloudflare, cloudflare_kv: CloudflareKV, namespace: str
) -> None:
    account: dict[str, Any] = {"account_id": cloudflare_kv.account_id, "namespace_id": namespace}
    values = client.kv.namespaces.values
    store = hubkv.KV("cloudflare-kv-binding", **cloudflare_kv.options(namespace))
    assert client.kv.namespaces.get(namespace, account_id=cloudflare_kv.account_id).id == namespace

    # SDK writes (multipart, with metadata and a TTL) -> hubkv reads.
    values.update("sdk:a/b?c", **account, value=b'{"from": "sdk"}', metadata='{"m": 1}')
    values.update("sdk:text", **account, value=b'"plain"', expiration_ttl=600)
    assert store.get("sdk:a/b?c") == {"from": "sdk"}
    assert store.get("sdk:text") == "plain"
    remaining = store.ttl("sdk:text")
    assert remaining is not None and 590 < remaining <= 600
    assert client.kv.namespaces.metadata.get("sdk:a/b?c", **account) == {"m": 1}

    # hubkv writes -> SDK reads.
    store.set("hubkv:é 日", {"n": [1, 2.5, None]})
    store.set_many({f"hubkv:{i:02d}": i for i in range(25)}, ttl=3600)
    assert values.get("hubkv:é 日", **account).read() == b'{"n":[1,2.5,null]}'
    listed = client.kv.namespaces.keys.list(**account, prefix="hubkv:", limit=10)
    names = [key.name for key in listed]  # the SDK follows result_info.cursor: 3 pages
    assert names == sorted(f"hubkv:{i:02d}" for i in range(25)) + ["hubkv:é 日"]
    expiring = [key for key in listed if key.name == "hubkv:07"][0]
    assert expiring.expiration is not None

    # Bulk routes, both ways.
    client.kv.namespaces.bulk_update(
        namespace,
        account_id=cloudflare_kv.account_id,
        body=[{"key": "bulk:1", "value": "1"}, {"key": "bulk:2", "value": "[2]"}],
    )
    assert store.get_many(["bulk:1", "bulk:2", "bulk:none"]) == {"bulk:1": 1, "bulk:2": [2]}
    got = client.kv.namespaces.bulk_get(
        namespace, account_id=cloudflare_kv.account_id, keys=["hubkv:01", "bulk:none"]
    )
    assert got is not None and got.values == {"hubkv:01": "1", "bulk:none": None}
    deleted = client.kv.namespaces.bulk_delete(
        namespace, account_id=cloudflare_kv.account_id, body=["bulk:1", "bulk:2"]
    )
    assert deleted is not None and deleted.unsuccessful_keys == []
    assert store.keys("bulk:") == []
    values.delete("sdk:text", **account)
    assert not store.has("sdk:text")
    assert store.clear("hubkv:") == 26
    assert [key.name for key in client.kv.namespaces.keys.list(**account)] == ["sdk:a/b?c"]


def test_the_sdk_sees_the_errors_hubkv_maps(
    client: cloudflare.Cloudflare, cloudflare_kv: CloudflareKV, namespace: str
) -> None:
    account = {"account_id": cloudflare_kv.account_id, "namespace_id": namespace}
    with pytest.raises(cloudflare.NotFoundError) as missing:
        client.kv.namespaces.values.get("missing", **account)
    assert missing.value.status_code == 404 and "10009" in str(missing.value)
    intruder = cloudflare.Cloudflare(
        api_token="wrong", base_url=cloudflare_kv.base_url, max_retries=0
    )
    with pytest.raises(cloudflare.PermissionDeniedError, match="10000"):
        intruder.kv.namespaces.keys.list(**account).result  # noqa: B018 - the request is the test
    intruder.close()
    with pytest.raises(cloudflare.BadRequestError, match="60"):  # Cloudflare's TTL floor
        client.kv.namespaces.values.update("k", **account, value=b"1", expiration_ttl=30)
