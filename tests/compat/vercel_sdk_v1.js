// Drives the Vercel face's v1 API with Vercel's SDK 1.x (npm `@vercel/sandbox@1`, the last 1.x,
// unmodified), pointed at the server through its `fetch` option.
// Usage: node vercel_sdk_v1.js BASE_URL TOKEN TEAM OTHER_TOKEN OTHER_TEAM
//
// Create three sandboxes, get one, list them one a page to the end (newest first, paged by
// `until`), extend a timeout, stop with `blocking: true` (the SDK polls until stopped), and see
// 404 for a missing sandbox and another team's, and 401 for a bad token.

const assert = require('node:assert/strict')
const crypto = require('node:crypto')
const { Sandbox, Snapshot } = require('@vercel/sandbox')
const { version } = require('@vercel/sandbox/package.json')

const [base, token, team, otherToken, otherTeam] = process.argv.slice(2)
// 1.x `Snapshot.get` ignores the `fetch` option: as its users must, replace the global fetch.
const realFetch = globalThis.fetch
const fetchHere = (url, init) => realFetch(String(url).replace('https://vercel.com/api', base), init)
globalThis.fetch = fetchHere
const project = `prj_${crypto.randomUUID().slice(0, 8)}`
const creds = { token, teamId: team, projectId: project, fetch: fetchHere }

async function status(call) {
  try {
    await call()
  } catch (err) {
    return err.response?.status ?? String(err)
  }
  return 200
}

async function main() {
  const created = []
  for (let n = 0; n < 3; n++) {
    const sandbox = await Sandbox.create({ ...creds, timeout: 600000, resources: { vcpus: 1 }, runtime: 'node22' })
    assert.equal(sandbox.status, 'running')
    assert.match(sandbox.sandboxId, /^sbx_/)
    created.push(sandbox)
  }
  const first = created[0]
  const got = await Sandbox.get({ ...creds, sandboxId: first.sandboxId })
  assert.equal(got.sandboxId, first.sandboxId)
  assert.equal(got.status, 'running')

  // One a page, newest first, following `next` as `until`, to the end.
  const seen = []
  let until
  for (;;) {
    const page = await Sandbox.list({ ...creds, limit: 1, ...(until ? { until } : {}) })
    seen.push(...page.json.sandboxes.map((s) => s.id))
    if (page.json.pagination.next === null) break
    until = page.json.pagination.next
  }
  assert.deepEqual(seen, created.map((s) => s.sandboxId).reverse(), 'each once, newest first')

  const before = first.timeout
  await first.extendTimeout(60000)
  assert.equal(first.timeout, before + 60000)

  // A snapshot stops the sandbox and archives it; read back, then deleted.
  const snapshot = await created[2].snapshot()
  assert.equal(snapshot.status, 'created')
  assert.equal(snapshot.sourceSandboxId, created[2].sandboxId)
  const read = await Snapshot.get({ ...creds, snapshotId: snapshot.snapshotId })
  assert.equal(read.snapshotId, snapshot.snapshotId)
  await read.delete()
  assert.equal(read.status, 'deleted')

  await first.stop({ blocking: true })
  assert.equal(first.status, 'stopped')
  assert.equal((await Sandbox.get({ ...creds, sandboxId: first.sandboxId })).status, 'stopped')

  assert.equal(await status(() => Sandbox.get({ ...creds, sandboxId: 'sbx_00000000000000000000000000000000' })), 404)
  const other = { ...creds, token: otherToken, teamId: otherTeam }
  assert.equal(await status(() => Sandbox.get({ ...other, sandboxId: created[1].sandboxId })), 404)
  assert.equal(await status(() => Sandbox.get({ ...creds, token: 'tq_not_a_token', sandboxId: first.sandboxId })), 401)
  await created[1].stop()
  console.log(`vercel sdk ${version}: ok`)
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err)
    process.exit(1)
  },
)
