import { afterEach, describe, expect, test } from 'bun:test'
import { dlopen, FFIType } from 'bun:ffi'
import { closeSync, openSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { SECRET } from '../support/app'
import {
	initialisedDataDir,
	killLeftovers,
	runBinary,
	type Running,
	startBinary,
	temporaryFolder
} from '../support/binary'
import { binaryCopy } from './processes'

const binary = await binaryCopy()
afterEach(killLeftovers)

const LOCK = 'todo-api.lock'

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

// The same kind of lock a todo-api takes, held by this test process in place of another todo-api.
function holdLock(dir: string): () => void {
	const { symbols } = dlopen('libc.so.6', { flock: { args: [FFIType.i32, FFIType.i32], returns: FFIType.i32 } })
	const fd = openSync(join(dir, LOCK), 'a+')
	if (symbols.flock(fd, 2 | 4) !== 0) throw new Error('could not take the lock')
	return () => closeSync(fd)
}

describe.if(process.platform === 'linux')('Running it: one todo-api per DATA_DIR, however they start (PGlite)', () => {
	test('a folder locked by another process: refused at once with one line naming the folder, and nothing in it changes', async () => {
		const dataDir = await initialisedDataDir()
		writeFileSync(join(dataDir, LOCK), '4242')
		const release = holdLock(dataDir)
		try {
			const before = snapshot(dataDir)
			const refused = await runBinary([], {
				binary,
				cwd: temporaryFolder(),
				env: { BETTER_AUTH_SECRET: SECRET, DATA_DIR: dataDir }
			})
			expect(refused.listened).toBe(false)
			expect(refused.code).not.toBe(0)
			expect(refused.stderr.trim().split('\n')).toEqual([expect.stringContaining(dataDir)])
			expect(refused.stderr).toContain('pid 4242')
			expect(snapshot(dataDir)).toEqual(before)
		} finally {
			release()
		}
	}, 60_000)

	test('a lock file left by a crash whose pid now belongs to another live process (pid reuse) does not block a start', async () => {
		const dataDir = await initialisedDataDir()
		// This test process is alive and is not a todo-api: exactly a reused pid.
		writeFileSync(join(dataDir, LOCK), String(process.pid))
		const running = await startBinary({
			binary,
			cwd: temporaryFolder(),
			env: { BETTER_AUTH_SECRET: SECRET, DATA_DIR: dataDir }
		})
		expect(readFileSync(join(dataDir, LOCK), 'utf8')).toBe(String(running.process.pid))
		expect((await fetch(`${running.url}/ready`)).status).toBe(200)
		expect(await running.stop('SIGTERM')).toBe(0)
	}, 60_000)

	test('three started at the same instant on a folder with a stale lock: exactly one serves, the others exit at once', async () => {
		for (let round = 0; round < 3; round++) {
			const dataDir = await initialisedDataDir()
			writeFileSync(join(dataDir, LOCK), '999999')
			const env = { BETTER_AUTH_SECRET: SECRET, DATA_DIR: dataDir }
			const outcomes = await Promise.allSettled(
				Array.from({ length: 3 }, () => startBinary({ binary, cwd: temporaryFolder(), env, timeoutMs: 30_000 }))
			)
			const serving = outcomes
				.filter((o): o is PromiseFulfilledResult<Running> => o.status === 'fulfilled')
				.map((o) => o.value)
			const refused = outcomes
				.filter((o): o is PromiseRejectedResult => o.status === 'rejected')
				.map((o) => String(o.reason))
			expect(serving).toHaveLength(1)
			expect(refused).toHaveLength(2)
			for (const reason of refused) expect(reason).toContain('is in use by another todo-api')
			const [winner] = serving as [Running]
			expect(readFileSync(join(dataDir, LOCK), 'utf8')).toBe(String(winner.process.pid))
			expect((await fetch(`${winner.url}/ready`)).status).toBe(200)
			expect(await winner.stop('SIGTERM')).toBe(0)
		}
	}, 120_000)
})
