import { afterAll, describe, expect, test } from 'bun:test'
import { sql } from 'drizzle-orm'
import { type Database, openDatabase } from '../src/database'
import { asUser, databaseUrl, testApp, testDatabase } from './support/app'

// Named statements a connection has prepared: reads by id have one connection of their own, so a
// read through the app and this count see the same session.
async function preparedAfterARead(database: Database): Promise<number> {
	const user = await asUser(await testApp(database))
	const created = await user.post('/api/tasks', { title: 'behind a pooler' })
	expect((await user.get(`/api/tasks/${created.body.id}`)).status).toBe(200)
	const [row] = await database.lookups
		.select({ count: sql<number>`count(*)::int` })
		.from(sql`pg_prepared_statements`)
		.where(sql`statement not like '%pg_prepared_statements%'`)
	return row?.count ?? -1
}

describe.skipIf(!databaseUrl)('Running it: DATABASE_URL behind a transaction pooler (Postgres)', () => {
	const opened: Database[] = []
	afterAll(() => Promise.all(opened.map((database) => database.close())))

	test('with ?pgbouncer=true it serves, the server never sees that parameter, and no statement is prepared', async () => {
		await testDatabase()
		const url = new URL(databaseUrl as string)
		url.searchParams.set('pgbouncer', 'true')
		const pooled = await openDatabase({ databaseUrl: url.href, dataDir: '' })
		opened.push(pooled)
		expect(await preparedAfterARead(pooled)).toBe(0)
	})

	test('without it the same read runs as a prepared statement', async () => {
		const direct = await openDatabase({ databaseUrl: databaseUrl as string, dataDir: '' })
		opened.push(direct)
		expect(await preparedAfterARead(direct)).toBeGreaterThan(0)
	})
})
