// Drives the Vercel face (v2) with Vercel's own SDK (npm `@vercel/sandbox`, the latest 3.x,
// unmodified), pointed at the server through its `fetch` option, as its users would.
// Usage: node vercel_sdk.js BASE_URL TOKEN TEAM OTHER_TOKEN OTHER_TEAM SANDBOX_DIR
//
// Create three named sandboxes, get one, list them one a page to the end (by name, filtered
// by a tag), list a sandbox's sessions, stop a session (answered once stopped), resume the
// sandbox into a new session, extend a session's timeout, and see 404 for a missing sandbox
// and another team's, and 401 for a bad token; delete.
//
// Each session runs the server's `[vercel] session_command`, set by the test to append the
// sandbox's `BOX` variable to `runs.txt` in its working directory. The SDK's file calls need
// the sandbox commands that come later, so the script reads that file where the server keeps
// it (SANDBOX_DIR): a resumed session, and a sandbox made from a snapshot, find the earlier
// sessions' lines there (the working directory's files intact).

const assert = require('node:assert/strict')
const crypto = require('node:crypto')
const { Sandbox } = require('@vercel/sandbox')
const { version } = require('@vercel/sandbox/package.json')

const fs = require('node:fs')
const path = require('node:path')

const [base, token, team, otherToken, otherTeam, sandboxDir] = process.argv.slice(2)
const fetchHere = (url, init) => fetch(String(url).replace('https://vercel.com/api', base), init)
const creds = { token, teamId: team, projectId: 'prj_compat', fetch: fetchHere }
const run = crypto.randomUUID().slice(0, 8)

async function status(call) {
  try {
    await call()
  } catch (err) {
    return err.response?.status ?? String(err)
  }
  return 200
}

// The lines of the `runs.txt` whose first line is `box` (a sandbox's working directory).
function runs(box) {
  for (const dir of fs.readdirSync(sandboxDir)) {
    const file = path.join(sandboxDir, dir, 'runs.txt')
    const lines = fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').filter(Boolean) : []
    if (lines[0] === box) return lines
  }
  return []
}

// Polls `check` until it returns true (a session's command writes its line just after it
// starts); fails naming `what` after 30 s.
async function waitFor(what, check) {
  const deadline = Date.now() + 30000
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

async function main() {
  const names = ['a', 'b', 'c'].map((n) => `box-${run}-${n}`)
  const created = []
  for (const name of names) {
    const sandbox = await Sandbox.create({
      ...creds,
      name,
      timeout: 600000,
      resources: { vcpus: 1 },
      tags: { run },
      env: { BOX: name },
    })
    assert.equal(sandbox.name, name)
    assert.equal(sandbox.status, 'running')
    assert.equal(sandbox.persistent, true, 'persistent by default')
    assert.deepEqual(sandbox.tags, { run })
    created.push(sandbox)
  }
  const first = created[0]
  const got = await Sandbox.get({ ...creds, name: names[0] })
  assert.equal(got.currentSession().sessionId, first.currentSession().sessionId)

  // One a page, by name, this run's tag, followed to the end.
  const pager = await Sandbox.list({ ...creds, limit: 1, sortBy: 'name', sortOrder: 'asc', tags: { run } })
  const listed = (await pager.toArray()).map((s) => s.name)
  assert.deepEqual(listed, names)

  // Stop: one POST, answered once the session is stopped, with its facts.
  const firstSession = first.currentSession().sessionId
  const stopped = await first.stop()
  assert.equal(stopped.status, 'stopped')
  assert.equal(typeof stopped.stoppedAt, 'number')
  assert.equal(typeof stopped.duration, 'number')
  assert.equal(first.status, 'stopped')
  // Persistent (the default): the stop kept the directory as a snapshot.
  assert.equal(stopped.snapshot?.status, 'created')
  assert.equal(stopped.snapshot?.sourceSessionId, firstSession)

  // Resume: a new session of the same sandbox.
  const resumed = await Sandbox.get({ ...creds, name: names[0], resume: true })
  assert.equal(resumed.status, 'running')
  assert.notEqual(resumed.currentSession().sessionId, firstSession, 'a new session')
  const sessions = await (await resumed.listSessions({ sortOrder: 'asc' })).toArray()
  assert.deepEqual(sessions.map((s) => s.id), [firstSession, resumed.currentSession().sessionId])
  assert.deepEqual(sessions.map((s) => s.status), ['stopped', 'running'])
  // The working directory's files are intact: the new session appended to the first's file.
  await waitFor('the resumed session to run', () => runs(names[0]).length >= 2)
  assert.deepEqual(runs(names[0]), [names[0], names[0]])

  // An explicit snapshot stops the session; a new sandbox starts from it.
  const snapshot = await created[1].snapshot()
  assert.equal(snapshot.status, 'created')
  assert.equal(created[1].status, 'stopped')
  const copyName = `box-${run}-copy`
  const source = { type: 'snapshot', snapshotId: snapshot.snapshotId }
  const copy = await Sandbox.create({ ...creds, name: copyName, source, env: { BOX: copyName } })
  assert.equal(copy.status, 'running')
  // Its directory is the snapshot's: the source's line, then its own session's.
  const restored = () =>
    fs
      .readdirSync(sandboxDir)
      .map((dir) => path.join(sandboxDir, dir, 'runs.txt'))
      .filter((file) => fs.existsSync(file))
      .map((file) => fs.readFileSync(file, 'utf8').split('\n').filter(Boolean))
      .filter((lines) => lines.at(-1) === copyName)
  await waitFor('the copy to run', () => restored().length > 0)
  assert.deepEqual(restored(), [[names[1], copyName]])
  await copy.delete()

  // Update: tags replaced whole, more vCPUs (and memory) for the next sessions.
  await resumed.update({ tags: { run, stage: 'two' }, resources: { vcpus: 2 } })
  assert.deepEqual(resumed.tags, { run, stage: 'two' })

  // Extend the running session's timeout.
  const before = resumed.currentSession().timeout
  await resumed.extendTimeout(60000)
  assert.equal(resumed.currentSession().timeout, before + 60000)

  // 404: a missing sandbox, and another team's; 401: a bad token.
  assert.equal(await status(() => Sandbox.get({ ...creds, name: `missing-${run}` })), 404)
  const other = { ...creds, token: otherToken, teamId: otherTeam }
  assert.equal(await status(() => Sandbox.get({ ...other, name: names[0] })), 404)
  assert.equal(await status(() => Sandbox.get({ ...creds, token: 'tq_not_a_token', name: names[0] })), 401)

  for (const sandbox of [resumed, created[1], created[2]]) await sandbox.delete()
  assert.equal(await status(() => Sandbox.get({ ...creds, name: names[1] })), 404, 'deleted')
  console.log(`vercel sdk ${version}: ok`)
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err)
    process.exit(1)
  },
)
