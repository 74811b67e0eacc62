import { afterEach, describe, expect, test } from 'bun:test'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { SECRET } from '../support/app'
import { initialisedDataDir, killLeftovers, type Running, startBinary, temporaryFolder } from '../support/binary'
import { binaryCopy } from './processes'

const binary = await binaryCopy()
afterEach(killLeftovers)

const LOCK = 'todo-api.lock'

describe.if(process.platform === 'linux')('Running it: one todo-api per DATA_DIR, however they start (PGlite)', () => {
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
			// Each of the others exits with an error, all it printed being one line naming the folder.
			for (const reason of refused) {
				expect(reason).toMatch(/^Error: todo-api exited with [1-9]\d*: [^\n]+\n$/)
				expect(reason).toContain(`${dataDir} is in use by another todo-api`)
			}
			const [winner] = serving as [Running]
			expect(readFileSync(join(dataDir, LOCK), 'utf8')).toBe(String(winner.process.pid))
			expect((await fetch(`${winner.url}/ready`)).status).toBe(200)
			expect(await winner.stop('SIGTERM')).toBe(0)
		}
	}, 120_000)
})
