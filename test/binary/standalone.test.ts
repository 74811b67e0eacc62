import { afterEach, describe, expect, test } from 'bun:test'
import { readdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { asUser, databaseUrl, SECRET } from '../support/app'
import { buildBinary, copyBinaryAlone, killLeftovers, over, SLOW, startBinary } from '../support/binary'

await buildBinary()
afterEach(killLeftovers)

// Compiled Bun binaries cannot see files next to the sources: PGlite's wasm and data files and
// the migrations must be inside the executable. A copy with nothing beside it proves they are.
describe('Running it: dist/todo-api copied alone into an empty folder', () => {
	test('on PGlite with no DATA_DIR it creates ./data, serves, stops with 0 on SIGTERM and keeps its tasks', async () => {
		const binary = copyBinaryAlone()
		const cwd = dirname(binary)
		const env = { BETTER_AUTH_SECRET: SECRET }

		const first = await startBinary({ binary, cwd, env })
		expect(first.output()).toContain('"database":"pglite"')
		expect((await fetch(`${first.url}/ready`)).status).toBe(200)
		const alice = await asUser(over(first.url))
		const created = await alice.post('/api/tasks', { title: 'Survive a restart', description: 'in ./data' })
		expect(created.status).toBe(201)
		expect(await first.stop('SIGTERM')).toBe(0)
		expect(readdirSync(cwd).sort()).toEqual(['data', 'todo-api'])
		expect(readdirSync(join(cwd, 'data'))).toContain('pgdata')

		const second = await startBinary({ binary, cwd, env })
		const again = await asUser(over(second.url), alice.sub)
		const listed = await again.get('/api/tasks')
		expect(listed.status).toBe(200)
		expect(listed.body).toEqual([created.body])
		expect(await second.stop('SIGTERM')).toBe(0)
	}, SLOW)

	test.skipIf(!databaseUrl)('on Postgres with DATABASE_URL it serves, stops with 0 on SIGTERM and keeps its tasks', async () => {
		const binary = copyBinaryAlone()
		const cwd = dirname(binary)
		const env = { BETTER_AUTH_SECRET: SECRET, DATABASE_URL: databaseUrl }

		const first = await startBinary({ binary, cwd, env })
		expect(first.output()).toContain('"database":"postgres"')
		const alice = await asUser(over(first.url))
		const created = await alice.post('/api/tasks', { title: 'Survive a restart', completed: true })
		expect(created.status).toBe(201)
		expect(await first.stop('SIGTERM')).toBe(0)

		const second = await startBinary({ binary, cwd, env })
		const listed = await (await asUser(over(second.url), alice.sub)).get('/api/tasks')
		expect(listed.body).toEqual([created.body])
		expect(await second.stop('SIGTERM')).toBe(0)
		expect(readdirSync(cwd)).toEqual(['todo-api'])
	}, SLOW)
})
