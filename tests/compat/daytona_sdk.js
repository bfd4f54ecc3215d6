// Drives the Daytona face with Daytona's own high-level TypeScript SDK (npm `@daytonaio/sdk`, the
// latest, unmodified), as Daytona's documentation uses it.
// Usage: node daytona_sdk.js BASE_URL TOKEN OTHER_ORG_TOKEN
//
// Create (which waits until started), get by id and by name, list with a labels filter and with
// limit 1 paging to the end, stop (which waits until stopped), start, the auto-stop and
// auto-delete intervals, setLabels (which replaces the whole set), refreshData, delete waiting
// until gone, and a 404 for another organisation's sandbox.

const assert = require('node:assert/strict')
const crypto = require('node:crypto')
const { Daytona, DaytonaNotFoundError } = require('@daytonaio/sdk')
const { version } = require('@daytonaio/sdk/package.json')

const [base, token, otherToken] = process.argv.slice(2)
const daytona = new Daytona({ apiKey: token, apiUrl: `${base}/api` })
const other = new Daytona({ apiKey: otherToken, apiUrl: `${base}/api` })
const run = crypto.randomUUID().slice(0, 8)

async function notFound(call, what) {
  try {
    await call()
  } catch (err) {
    assert.ok(err instanceof DaytonaNotFoundError, `${what}: ${err}`)
    return
  }
  assert.fail(`${what} must be a 404`)
}

async function main() {
  const names = [0, 1, 2].map((n) => `sdk-js-${run}-${n}`)
  const created = []
  for (const name of names) {
    const sandbox = await daytona.create({ name, envVars: { GREETING: 'hello' }, labels: { run } }, { timeout: 60 })
    assert.equal(sandbox.state, 'started')
    assert.equal(sandbox.name, name)
    assert.deepEqual(sandbox.env, { GREETING: 'hello' })
    assert.equal(sandbox.labels.run, run)
    assert.equal(sandbox.toolboxProxyUrl, `${base}/toolbox`, 'absolute, on the server base')
    created.push(sandbox)
  }
  const [first, second] = created
  assert.equal((await daytona.get(first.id)).name, names[0])
  assert.equal((await daytona.get(names[0])).id, first.id, 'found by name')

  const listed = []
  for await (const sandbox of daytona.list({ labels: { run }, limit: 1 })) listed.push(sandbox.id)
  assert.deepEqual([...listed].sort(), created.map((s) => s.id).sort(), 'every sandbox once, one a page')

  await first.stop()
  assert.equal(first.state, 'stopped')
  await first.start(60)
  assert.equal(first.state, 'started')

  await first.setAutostopInterval(42)
  await first.setAutoDeleteInterval(77)
  assert.deepEqual([first.autoStopInterval, first.autoDeleteInterval], [42, 77])
  await first.setAutoDeleteInterval(-1)

  assert.deepEqual(await first.setLabels({ run, stage: 'two' }), { run, stage: 'two' })
  const again = await daytona.get(first.id)
  assert.deepEqual(again.labels, { run, stage: 'two' }, 'the whole set replaced')
  assert.deepEqual([again.autoStopInterval, again.autoDeleteInterval], [42, -1])
  const stale = await daytona.get(second.id)
  await second.setLabels({ run, seen: 'yes' })
  await stale.refreshData()
  assert.deepEqual(stale.labels, { run, seen: 'yes' })

  await notFound(() => other.get(first.id), "another organisation's sandbox")

  for (const sandbox of created) await daytona.delete(sandbox, 60, true)
  for (const sandbox of created) await notFound(() => daytona.get(sandbox.id), 'a deleted sandbox')
  console.log(`daytona npm sdk ${version}: ok`)
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err)
    process.exit(1)
  },
)
