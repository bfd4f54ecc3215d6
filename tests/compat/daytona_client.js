// Drives the Daytona face with Daytona's own generated TypeScript client (npm
// @daytonaio/api-client, unmodified; axios underneath, no runtime validation, so this script
// checks the shapes itself). Usage: node daytona_client.js BASE_URL TOKEN OTHER_ORG_TOKEN
//
// Creates three sandboxes, lists them in pages of two (following nextCursor), gets one by id
// and by name, stops it and polls until it is stopped, starts it, deletes them and polls until
// they are gone (404), and sees 404 for a missing sandbox and for another organisation's.

const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const { Configuration, SandboxApi } = require('@daytonaio/api-client');
const clientVersion = require('@daytonaio/api-client/package.json').version;

const [base, token, otherToken] = process.argv.slice(2);
const apiFor = (accessToken) => new SandboxApi(new Configuration({ basePath: `${base}/api`, accessToken }));
const api = apiFor(token);
const other = apiFor(otherToken);
const run = crypto.randomUUID().slice(0, 8);
const names = [0, 1, 2].map((n) => `js-${run}-${n}`);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// The HTTP status a call fails with.
async function status(call) {
  try {
    await call();
  } catch (err) {
    assert.ok(err.response, `not an HTTP error: ${err}`);
    assert.equal(typeof err.response.data.message, 'string', JSON.stringify(err.response.data));
    return err.response.status;
  }
  assert.fail('the call should have failed');
}

// Polls getSandbox until the state; a 404 counts as destroyed.
async function wait(id, state) {
  const deadline = Date.now() + 30_000;
  for (;;) {
    let sandbox;
    try {
      sandbox = (await api.getSandbox(id)).data;
    } catch (err) {
      if (state === 'destroyed' && err.response?.status === 404) return null;
      throw err;
    }
    if (sandbox.state === state) return sandbox;
    assert.ok(Date.now() < deadline, `${id} is ${sandbox.state}, not ${state}`);
    await sleep(100);
  }
}

function assertSandbox(sandbox) {
  for (const key of ['id', 'organizationId', 'name', 'user', 'target', 'toolboxProxyUrl', 'state']) {
    assert.equal(typeof sandbox[key], 'string', `${key}: ${JSON.stringify(sandbox)}`);
  }
  for (const key of ['cpu', 'gpu', 'memory', 'disk']) assert.ok(Number.isInteger(sandbox[key]), key);
  for (const key of ['public', 'networkBlockAll']) assert.equal(typeof sandbox[key], 'boolean', key);
  assert.equal(typeof sandbox.labels, 'object');
}

async function main() {
  const created = [];
  for (const name of names) {
    const response = await api.createSandbox({ name, labels: { run }, env: { GREETING: 'hello' } });
    assert.equal(response.status, 200);
    assertSandbox(response.data);
    assert.equal(response.data.state, 'started');
    assert.deepEqual(response.data.env, { GREETING: 'hello' });
    assert.match(response.headers['operation-location'], /\/api\/tasks\/\d+$/);
    created.push(response.data.id);
  }

  // Pages of two, by name, only this run's sandboxes.
  const seen = [];
  let cursor;
  for (;;) {
    const page = (await api.listSandboxes(undefined, cursor, 2, undefined, undefined, JSON.stringify({ run }),
      undefined, undefined, undefined, undefined, undefined, undefined, undefined, undefined, undefined, undefined,
      undefined, undefined, undefined, undefined, undefined, undefined, undefined, undefined, undefined, undefined,
      undefined, undefined, 'name', 'asc')).data;
    assert.ok(page.items.length <= 2);
    page.items.forEach(assertSandbox);
    seen.push(...page.items.map((item) => item.name));
    if (page.nextCursor === null || page.nextCursor === undefined) break;
    cursor = page.nextCursor;
  }
  assert.deepEqual(seen, names);

  const [first] = created;
  assert.equal((await api.getSandbox(first)).data.name, names[0]);
  assert.equal((await api.getSandbox(names[0])).data.id, first);

  const stopping = (await api.stopSandbox(first)).data;
  assert.equal(stopping.state, 'stopping');
  assert.equal(stopping.desiredState, 'stopped');
  await wait(first, 'stopped');
  assert.equal(await status(() => api.stopSandbox(first)), 400);
  assert.equal((await api.startSandbox(first)).data.state, 'started');
  assert.equal((await api.stopSandbox(first, undefined, true)).data.state, 'stopping');
  await wait(first, 'stopped');

  for (const id of created) assert.equal((await api.deleteSandbox(id)).data.state, 'destroying');
  for (const id of created) await wait(id, 'destroyed');

  assert.equal(await status(() => api.getSandbox(crypto.randomUUID())), 404);
  const theirs = (await other.createSandbox({ name: `theirs-${run}` })).data;
  assert.equal(await status(() => api.getSandbox(theirs.id)), 404);
  assert.equal(await status(() => api.stopSandbox(theirs.id)), 404);
  assert.equal(await status(() => api.deleteSandbox(theirs.id)), 404);
  assert.equal((await other.getSandbox(theirs.id)).data.state, 'started', 'and it was not touched');
  await other.deleteSandbox(theirs.id);
  console.log(`daytona npm client ${clientVersion}: ok`);
}

main().catch((err) => {
  console.error(err.response ? `${err.response.status} ${JSON.stringify(err.response.data)}` : err);
  process.exit(1);
});
