"""Drives the Daytona face with Daytona's own generated Python client (PyPI daytona-api-client,
unmodified; its pydantic models are strict and it deserialises only HTTP 200).
Usage: daytona_client.py BASE_URL TOKEN OTHER_ORG_TOKEN

Creates three sandboxes, lists them in pages of two (following nextCursor), gets one by id and
by name, stops it and polls until it is stopped (as the SDK does), starts it, deletes it and
polls until it is gone (404), and sees 404 for a missing sandbox and for another organisation's.
Every call that changes a sandbox answers 200 with an Operation-Location the token can read.
"""

import json
import sys
import time
import urllib.request
import uuid

import daytona_api_client
from daytona_api_client import ApiClient, Configuration, CreateSandbox, SandboxApi, SandboxState
from daytona_api_client.exceptions import BadRequestException, NotFoundException

base, token, other_token = sys.argv[1:4]


def api_for(access_token):
    return SandboxApi(ApiClient(Configuration(host=base + "/api", access_token=access_token, retries=0)))


api, other = api_for(token), api_for(other_token)
run = uuid.uuid4().hex[:8]
names = [f"py-{run}-{n}" for n in range(3)]


def wait(sandbox_id, state, timeout=30):
    """Polls get_sandbox until the state (the SDK's wait loop); 404 counts as destroyed."""
    deadline = time.time() + timeout
    while True:
        try:
            sandbox = api.get_sandbox(sandbox_id)
        except NotFoundException:
            if state == "destroyed":
                return None
            raise
        if sandbox.state.value == state:
            return sandbox
        assert time.time() < deadline, f"{sandbox_id} is {sandbox.state} after {timeout}s, not {state}"
        time.sleep(0.1)


def task_at(response):
    """The task an Operation-Location names, read with the same token."""
    # The client copies the headers into a plain dict, as the server spelled them.
    location = {name.lower(): value for name, value in response.headers.items()}["operation-location"]
    assert "/api/tasks/" in location, location
    request = urllib.request.Request(location, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request) as answer:
        return json.load(answer)


created = []
for name in names:
    response = api.create_sandbox_with_http_info(
        CreateSandbox(name=name, env={"GREETING": "hello"}, labels={"run": run}, cpu=1, memory=1)
    )
    assert response.status_code == 200, response.status_code
    sandbox = response.data
    assert sandbox.state == SandboxState.STARTED and sandbox.name == name, sandbox
    assert sandbox.env == {"GREETING": "hello"} and sandbox.labels == {"run": run}, sandbox
    assert task_at(response)["operation"] == "StartWorkload"
    created.append(sandbox.id)

# Listing in pages of two, by name, only this run's sandboxes (a label filter).
seen, cursor = [], None
while True:
    page = api.list_sandboxes(limit=2, cursor=cursor, labels=json.dumps({"run": run}), sort="name", order="asc")
    assert len(page.items) <= 2, page
    seen += [item.name for item in page.items]
    cursor = page.next_cursor
    if cursor is None:
        break
assert seen == names, seen
started = api.list_sandboxes(states=[SandboxState.STARTED], labels=json.dumps({"run": run}))
assert sorted(item.id for item in started.items) == sorted(created), started

first = created[0]
assert api.get_sandbox(first).name == names[0]
assert api.set_autostop_interval(first, 30).auto_stop_interval == 30
assert api.set_auto_delete_interval(first, -1).auto_delete_interval == -1
assert api.get_sandbox(names[0]).id == first, "found by name"

# Stop: 200, already stopping; then poll until stopped; a second stop is a 400.
response = api.stop_sandbox_with_http_info(first)
assert response.status_code == 200
assert response.data.state == SandboxState.STOPPING and response.data.desired_state.value == "stopped", response.data
assert task_at(response)["operation"] == "StopSpec"
stopped = wait(first, "stopped")
assert stopped.desired_state.value == "stopped", stopped
try:
    api.stop_sandbox(first)
    raise AssertionError("a second stop must fail")
except BadRequestException as err:
    assert json.loads(err.body)["message"] == "Sandbox is not in a stoppable state", err.body

# Start again, then a forced stop.
assert api.start_sandbox(first).state == SandboxState.STARTED
assert api.stop_sandbox(first, force=True).state == SandboxState.STOPPING
wait(first, "stopped")

# Delete: 200 destroying, then gone.
for sandbox_id in created:
    deleted = api.delete_sandbox(sandbox_id)
    assert deleted.state == SandboxState.DESTROYING, deleted
for sandbox_id in created:
    wait(sandbox_id, "destroyed")

# 404s: a missing sandbox, and another organisation's (which exists).
for missing in [str(uuid.uuid4()), "no-such-sandbox"]:
    try:
        api.get_sandbox(missing)
        raise AssertionError("a missing sandbox must be a 404")
    except NotFoundException as err:
        assert missing in json.loads(err.body)["message"], err.body
theirs = other.create_sandbox(CreateSandbox(name=f"theirs-{run}"))
for call in [lambda: api.get_sandbox(theirs.id), lambda: api.stop_sandbox(theirs.id), lambda: api.delete_sandbox(theirs.id)]:
    try:
        call()
        raise AssertionError("another organisation's sandbox must be a 404")
    except NotFoundException:
        pass
assert other.get_sandbox(theirs.id).state == SandboxState.STARTED, "and it was not touched"
other.delete_sandbox(theirs.id)

print(f"daytona python client {daytona_api_client.__version__}: ok")
