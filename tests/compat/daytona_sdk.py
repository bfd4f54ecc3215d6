"""Drives the Daytona face with Daytona's own high-level Python SDK (PyPI `daytona`, the latest,
unmodified): the synchronous `Daytona` and the asynchronous `AsyncDaytona`, as Daytona's
documentation uses them. Usage: daytona_sdk.py BASE_URL TOKEN OTHER_ORG_TOKEN

For each client: create (which waits until started), get by id and by name, list with a labels
filter and with limit=1 paging to the end, stop (which waits until stopped), start, the
auto-stop and auto-delete intervals, set_labels (which replaces the whole set), refresh_data,
delete waiting until gone, and a 404 for another organisation's sandbox.
"""

import asyncio
import importlib.metadata
import sys
import uuid

from daytona import (
    AsyncDaytona,
    CreateSandboxFromSnapshotParams,
    Daytona,
    DaytonaConfig,
    DaytonaNotFoundError,
    ListSandboxesQuery,
)

base, token, other_token = sys.argv[1:4]
config = DaytonaConfig(api_key=token, api_url=base + "/api")
other_config = DaytonaConfig(api_key=other_token, api_url=base + "/api")
run = uuid.uuid4().hex[:8]


def check_created(sandbox, name):
    assert sandbox.state.value == "started", sandbox.state
    assert sandbox.name == name, sandbox.name
    assert sandbox.env == {"GREETING": "hello"}, sandbox.env
    assert sandbox.labels["run"] == run, sandbox.labels
    # Absolute, on the server's own base: the SDK asks no further.
    assert sandbox.toolbox_proxy_url == base + "/toolbox", sandbox.toolbox_proxy_url


def sync_client():
    daytona, other = Daytona(config), Daytona(other_config)
    names = [f"sdk-{run}-{n}" for n in range(3)]
    params = lambda name: CreateSandboxFromSnapshotParams(  # noqa: E731
        name=name, env_vars={"GREETING": "hello"}, labels={"run": run, "client": "sync"}
    )
    created = [daytona.create(params(name), timeout=60) for name in names]
    for sandbox, name in zip(created, names):
        check_created(sandbox, name)
    first = created[0]
    assert daytona.get(first.id).name == names[0]
    assert daytona.get(names[0]).id == first.id, "found by name"

    # A labels filter, one sandbox a page, followed to the end.
    listed = list(daytona.list(ListSandboxesQuery(labels={"run": run, "client": "sync"}, limit=1)))
    assert sorted(s.id for s in listed) == sorted(s.id for s in created), [s.id for s in listed]
    assert len({s.id for s in listed}) == 3, "no sandbox twice"

    first.stop(timeout=60)
    assert first.state.value == "stopped", first.state
    first.start(timeout=60)
    assert first.state.value == "started", first.state

    first.set_autostop_interval(42)
    first.set_auto_delete_interval(77)
    assert (first.auto_stop_interval, first.auto_delete_interval) == (42, 77)
    first.set_auto_delete_interval(-1)

    # set_labels replaces the whole set (the SDK's language label too, as on Daytona).
    assert first.set_labels({"run": run, "stage": "two"}) == {"run": run, "stage": "two"}
    again = daytona.get(first.id)
    assert again.labels == {"run": run, "stage": "two"}, again.labels
    assert (again.auto_stop_interval, again.auto_delete_interval) == (42, -1)
    stale = daytona.get(created[1].id)
    created[1].set_labels({"run": run, "seen": "yes"})
    stale.refresh_data()
    assert stale.labels == {"run": run, "seen": "yes"}, stale.labels

    try:
        other.get(first.id)
        raise AssertionError("another organisation's sandbox must be a 404")
    except DaytonaNotFoundError:
        pass

    for sandbox in created:
        daytona.delete(sandbox, wait=True)
    for sandbox in created:
        try:
            daytona.get(sandbox.id)
            raise AssertionError("a deleted sandbox must be a 404")
        except DaytonaNotFoundError:
            pass


async def async_client():
    async with AsyncDaytona(config) as daytona, AsyncDaytona(other_config) as other:
        names = [f"sdk-{run}-async-{n}" for n in range(2)]
        params = lambda name: CreateSandboxFromSnapshotParams(  # noqa: E731
            name=name, env_vars={"GREETING": "hello"}, labels={"run": run, "client": "async"}
        )
        created = [await daytona.create(params(name), timeout=60) for name in names]
        for sandbox, name in zip(created, names):
            check_created(sandbox, name)
        first = created[0]
        assert (await daytona.get(first.id)).name == names[0]
        assert (await daytona.get(names[0])).id == first.id

        query = ListSandboxesQuery(labels={"run": run, "client": "async"}, limit=1)
        listed = [s.id async for s in daytona.list(query)]
        assert sorted(listed) == sorted(s.id for s in created), listed

        await first.stop(timeout=60)
        assert first.state.value == "stopped", first.state
        await first.start(timeout=60)
        assert first.state.value == "started", first.state
        await first.set_autostop_interval(5)
        await first.set_auto_delete_interval(9)
        assert (first.auto_stop_interval, first.auto_delete_interval) == (5, 9)
        assert await first.set_labels({"only": "this"}) == {"only": "this"}
        await created[1].refresh_data()
        assert created[1].labels["client"] == "async"

        try:
            await other.get(first.id)
            raise AssertionError("another organisation's sandbox must be a 404")
        except DaytonaNotFoundError:
            pass

        for sandbox in created:
            await daytona.delete(sandbox, wait=True)
        try:
            await daytona.get(first.id)
            raise AssertionError("a deleted sandbox must be a 404")
        except DaytonaNotFoundError:
            pass


sync_client()
asyncio.run(async_client())
print(f"daytona python sdk {importlib.metadata.version('daytona')}: ok")
