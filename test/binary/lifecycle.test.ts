import { afterEach, describe, expect, test } from 'bun:test'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { basename, dirname, join } from 'node:path'
import { asUser, databaseUrl, newUser, SECRET, sign, taskOf, tasksOf } from '../support/app'
import {
	binaryDatabases,
	buildBinary,
	heldRequest,
	initialisedDataDir,
	killLeftovers,
	over,
	printed,
	ROOT,
	runBinary,
	signalOnListening,
	SLOW,
	startBinary,
	startScript,
	temporaryFolder
} from '../support/binary'

await buildBinary()
afterEach(killLeftovers)

// Every file under the folder with its size, mtime and content: "not touched" means all equal.
function snapshot(dir: string): Record<string, string> {
	const files: Record<string, string> = {}
	for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
		if (!entry.isFile()) continue
		const path = join(entry.parentPath, entry.name)
		const { size, mtimeMs } = statSync(path)
		files[path.slice(dir.length)] = `${size} ${mtimeMs} ${Bun.hash(readFileSync(path))}`
	}
	return files
}

// PGlite does not lock its folder and two processes on one folder corrupt it.
describe('Running it: one todo-api per DATA_DIR (PGlite)', () => {
	test('a second one refuses at once, naming the folder and the pid of the first, and touches nothing in it; the first serves on; once the first is killed, a new one takes over', async () => {
		const dataDir = await initialisedDataDir()
		const env = { BETTER_AUTH_SECRET: SECRET, DATA_DIR: dataDir }
		const first = await startBinary({ cwd: temporaryFolder(), env })
		const alice = await asUser(over(first.url))
		const before = await alice.post('/api/tasks', { title: 'Written before the intruder' })
		expect(before.status).toBe(201)
		const untouched = snapshot(dataDir)

		// The same folder by another spelling: relative to the second one's working folder.
		const second = await runBinary([], { cwd: dirname(dataDir), env: { ...env, DATA_DIR: basename(dataDir) } })
		expect(second.listened).toBe(false)
		expect(second.code).not.toBe(0)
		const lines = second.stderr.trimEnd().split('\n')
		expect(lines).toHaveLength(1)
		expect(lines[0]).toContain(dataDir)
		expect(lines[0]).toContain(`pid ${first.process.pid}`)
		// Its failed attempt left the first one's lock in place.
		const third = await runBinary([], { cwd: temporaryFolder(), env })
		expect({ listened: third.listened, refused: third.code !== 0 }).toEqual({ listened: false, refused: true })
		expect(snapshot(dataDir)).toEqual(untouched)

		expect((await alice.get(`/api/tasks/${taskOf(before).id}`)).body).toEqual(before.body)
		const after = await alice.post('/api/tasks', { title: 'Written after the intruder left' })
		expect(after.status).toBe(201)

		// A crash gives it no chance to release the folder; the next one must get it all the same.
		expect(await first.stop('SIGKILL')).toBe(137)
		const successor = await startBinary({ cwd: temporaryFolder(), env })
		const listed = await (await asUser(over(successor.url), alice.sub)).get('/api/tasks')
		expect(tasksOf(listed).toSorted((a, b) => a.id - b.id)).toEqual([taskOf(before), taskOf(after)])
		expect(await successor.stop('SIGTERM')).toBe(0)
	}, SLOW)
})

describe('Running it: SIGTERM', () => {
	for (const database of binaryDatabases)
		test(`requests in flight when SIGTERM comes complete, then it exits 0 (${database.name})`, async () => {
			const settings = await database.settings()
			const running = await startBinary({ cwd: temporaryFolder(), env: settings })
			const user = newUser()
			const token = await sign({ sub: user })
			const titles = ['first in flight', 'second in flight', 'third in flight']
			const held = await Promise.all(
				titles.map((title) =>
					heldRequest(running.url, { method: 'POST', path: '/api/tasks', token, body: JSON.stringify({ title }) })
				)
			)
			// The heads went out before this round trip and the pause, so the server has read them.
			expect((await fetch(`${running.url}/health`)).status).toBe(200)
			await Bun.sleep(200)

			const exited = running.stop('SIGTERM')
			await printed(running, '"msg":"stopping"')
			expect(await Promise.all(held.map((request) => request.finish()))).toEqual([201, 201, 201])
			expect(await exited).toBe(0)

			const again = await startBinary({ cwd: temporaryFolder(), env: settings })
			const listed = await (await asUser(over(again.url), user)).get('/api/tasks')
			expect(tasksOf(listed).map((task) => task.title).sort()).toEqual([...titles].sort())
			expect(await again.stop('SIGTERM')).toBe(0)
		}, SLOW)

	// The window is narrow, so three tries.
	for (const database of binaryDatabases)
		test(`SIGTERM the instant it logs "listening" still stops it cleanly with 0 (${database.name})`, async () => {
			const settings = await database.settings()
			for (let attempt = 0; attempt < 3; attempt++) {
				const { code, output } = await signalOnListening('SIGTERM', { cwd: temporaryFolder(), env: settings })
				expect({ code, stopping: output.includes('"msg":"stopping"') }).toEqual({ code: 0, stopping: true })
			}
		}, SLOW)
})

// The process a test started, as it is now: after an exec in place its pid is the same and its
// environment is the one it was given.
const wasmThreadsOf = (pid: number) =>
	readFileSync(`/proc/${pid}/environ`, 'utf8')
		.split('\0')
		.find((entry) => entry.startsWith('BUN_JSC_numberOfWasmCompilerThreads='))
		?.split('=')[1]

describe('Running it: PGlite compiles its wasm on every core', () => {
	const cores = availableParallelism()
	test.skipIf(cores < 2)(`on PGlite it runs itself again in place with ${cores} wasm compiler threads, and serves`, async () => {
		const running = await startBinary({ cwd: temporaryFolder(), env: { BETTER_AUTH_SECRET: SECRET, DATA_DIR: await initialisedDataDir() } })
		expect(wasmThreadsOf(running.process.pid)).toBe(String(cores))
		const user = await asUser(over(running.url))
		expect((await user.post('/api/tasks', { title: 'after the exec' })).status).toBe(201)
		expect(await running.stop('SIGTERM')).toBe(0)
	}, SLOW)

	test.skipIf(cores < 2)('under `bun --watch src/main.ts` the exec keeps the runtime flags', async () => {
		const wrapper = startScript(`exec '${process.execPath}' --watch '${join(ROOT, 'src', 'main.ts')}'`)
		const running = await startBinary({ binary: wrapper, cwd: temporaryFolder(), env: { BETTER_AUTH_SECRET: SECRET, DATA_DIR: await initialisedDataDir() } })
		expect(wasmThreadsOf(running.process.pid)).toBe(String(cores))
		expect(readFileSync(`/proc/${running.process.pid}/cmdline`, 'utf8').split('\0')).toContain('--watch')
		expect(await running.stop('SIGTERM')).toBe(0)
	}, SLOW)

	test('a number of threads the operator set is kept', async () => {
		const env = { BETTER_AUTH_SECRET: SECRET, DATA_DIR: await initialisedDataDir(), BUN_JSC_numberOfWasmCompilerThreads: '1' }
		const running = await startBinary({ cwd: temporaryFolder(), env })
		expect(wasmThreadsOf(running.process.pid)).toBe('1')
		expect(await running.stop('SIGTERM')).toBe(0)
	}, SLOW)

	test.skipIf(!databaseUrl)('on Postgres, which compiles no wasm, it is left as it is', async () => {
		const running = await startBinary({ cwd: temporaryFolder(), env: { BETTER_AUTH_SECRET: SECRET, DATABASE_URL: databaseUrl, WORKERS: '1' } })
		expect(wasmThreadsOf(running.process.pid)).toBeUndefined()
		expect(await running.stop('SIGTERM')).toBe(0)
	}, SLOW)
})
