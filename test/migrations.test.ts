import { afterAll, expect, test } from 'bun:test'
import { sql } from 'drizzle-orm'
import { readMigrationFiles } from 'drizzle-orm/migrator'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type Database, openDatabase } from '../src/database'
import { migrate } from '../src/database/migrate'
import { silentLog } from '../src/log'
import { asUser, databaseUrl, emptyDatabase, taskOf, tasksOf, testApp } from './support/app'

const dir = mkdtempSync(join(tmpdir(), 'todo-upgrade-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const [first] = readMigrationFiles({ migrationsFolder: join(import.meta.dir, '..', 'drizzle') })

// The database as the first release left it: its one migration applied and journaled, as
// migrate() does, and its users' tasks written.
async function firstRelease(database: Database, tasks: { user: string; title: string; completed: boolean }[]) {
	if (!first) throw new Error('no migrations in drizzle/')
	const db = database.writes
	await db.execute(sql`create schema drizzle`)
	await db.execute(sql`create table drizzle.__drizzle_migrations (id serial primary key, hash text not null, created_at bigint)`)
	for (const statement of first.sql) await db.execute(sql.raw(statement))
	await db.execute(sql`insert into drizzle.__drizzle_migrations (hash, created_at) values (${first.hash}, ${first.folderMillis})`)
	for (const { user, title, completed } of tasks)
		await db.execute(sql`insert into tasks (user_id, title, completed) values (${user}, ${title}, ${completed})`)
}

async function withEmptyDatabase(run: (database: Database) => Promise<void>): Promise<void> {
	const own = databaseUrl ? await emptyDatabase('upgrade') : undefined
	const database = await openDatabase({ databaseUrl: own?.url, dataDir: dir })
	try {
		await database.settle()
		await run(database)
	} finally {
		await database.close()
		await own?.drop()
	}
}

test("a database of the first release keeps its tasks, and the lists' totals count them once migrated", () =>
	withEmptyDatabase(async (database) => {
		const alice = `user-${crypto.randomUUID()}`
		const bob = `user-${crypto.randomUUID()}`
		await firstRelease(database, [
			{ user: alice, title: 'milk', completed: false },
			{ user: alice, title: 'bread', completed: true },
			{ user: alice, title: 'eggs', completed: false },
			{ user: bob, title: 'tax return', completed: true }
		])

		await migrate(database.writes, silentLog)
		const app = await testApp(database)
		const [asAlice, asBob] = await Promise.all([asUser(app, alice), asUser(app, bob)])
		const totals = async (user: typeof asAlice) =>
			Promise.all(
				['', '?completed=true', '?completed=false'].map(async (query) => {
					const list = await user.get(`/api/tasks${query}`)
					expect(list.status).toBe(200)
					return Number(list.headers.get('x-total-count'))
				})
			)
		expect(tasksOf(await asAlice.get('/api/tasks')).map((task) => task.title)).toEqual(['eggs', 'bread', 'milk'])
		expect(await totals(asAlice)).toEqual([3, 1, 2])
		expect(await totals(asBob)).toEqual([1, 1, 0])

		const added = taskOf(await asAlice.post('/api/tasks', { title: 'butter' }))
		expect((await asAlice.patch(`/api/tasks/${added.id}/complete`, { completed: true })).status).toBe(200)
		const milk = tasksOf(await asAlice.get('/api/tasks')).find((task) => task.title === 'milk')
		expect((await asAlice.delete(`/api/tasks/${milk?.id}`)).status).toBe(204)
		expect(await totals(asAlice)).toEqual([3, 2, 1])
	}), 60_000)
