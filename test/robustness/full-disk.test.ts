import { afterAll, describe, expect, test } from 'bun:test'
import { spawnSync } from 'bun'
import { mkdtempSync, rmSync, statfsSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openDatabase } from '../../src/database'
import { migrate } from '../../src/database/migrate'
import { asUser, call, databaseKind, tasksOf, testApp } from '../support/app'

// A file system of its own, so that it can be filled: a tmpfs, which only root may mount.
const mount = mkdtempSync(join(tmpdir(), 'todo-full-'))
const mounted = databaseKind === 'pglite' && spawnSync(['mount', '-t', 'tmpfs', '-o', 'size=160m', 'tmpfs', mount]).exitCode === 0
afterAll(() => {
	if (mounted) spawnSync(['umount', '-l', mount])
	rmSync(mount, { recursive: true, force: true })
})

describe.if(mounted)('Running it: the embedded database on a disk that fills up (PGlite, as root)', () => {
	test('a write answers 503 and changes nothing while reads and /ready still answer 200; once there is room again, writes succeed and nothing was lost', async () => {
		const database = await openDatabase({ dataDir: join(mount, 'data') })
		await database.settle()
		await migrate(database.writes)
		const app = await testApp(database)
		const user = await asUser(app)
		expect((await user.post('/api/tasks', { title: 'before' })).status).toBe(201)

		const filler = join(mount, 'filler')
		const { bavail, bsize } = statfsSync(mount)
		writeFileSync(filler, Buffer.alloc(Number(bavail) * Number(bsize)))
		const answers: number[] = []
		for (let n = 0; n < 200; n++)
			answers.push((await user.post('/api/tasks', { title: `on a full disk ${n}`, description: 'x'.repeat(9_000) })).status)
		expect(new Set(answers.filter((status) => status !== 201))).toEqual(new Set([503]))
		expect((await user.get('/api/tasks')).status).toBe(200)
		expect((await call(app, 'GET', '/ready')).status).toBe(200)

		rmSync(filler)
		expect((await user.post('/api/tasks', { title: 'after' })).status).toBe(201)
		const titles = tasksOf(await user.get('/api/tasks?limit=1000')).map((task) => task.title)
		expect(titles).toContain('before')
		expect(titles).toContain('after')
		expect(titles).toHaveLength(2 + answers.filter((status) => status === 201).length)
		await database.close()
	}, 60_000)
})
