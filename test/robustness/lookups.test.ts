import { afterAll, describe, expect, test } from 'bun:test'
import postgres from 'postgres'
import { POOL_SIZE } from '../../src/database'
import { asUser, databaseUrl, testApp } from '../support/app'

const app = await testApp()
const WRITERS = POOL_SIZE + 2

// Another client holds a task's row lock: every write to that task waits for it, each holding one
// of the app's pooled connections, and postgres.js pipelines what comes next behind them.
describe.skipIf(!databaseUrl)('A read of one task by its id (Postgres)', () => {
	const other = postgres(databaseUrl ?? '', { max: 2, onnotice: () => {} })
	afterAll(() => other.end())

	test(`is answered while ${WRITERS} writes wait for a lock, every pooled connection among them`, async () => {
		const alice = await asUser(app)
		const locked = (await alice.post('/api/tasks', { title: 'Locked by someone else' })).body.id
		const free = await alice.post('/api/tasks', { title: 'Read meanwhile' })
		const holder = await other.reserve()
		let writes: ReturnType<typeof alice.put>[] = []
		try {
			await holder`begin`
			await holder`select 1 from tasks where id = ${locked} for update`
			writes = Array.from({ length: WRITERS }, (_, n) => alice.put(`/api/tasks/${locked}`, { title: `Write ${n}` }))
			const waiting = async () =>
				Number((await other`select count(*) from pg_stat_activity where wait_event_type = 'Lock' and datname = current_database()`)[0]?.count)
			while ((await waiting()) < POOL_SIZE) await Bun.sleep(10)

			const read = await Promise.race([alice.get(`/api/tasks/${free.body.id}`), Bun.sleep(10_000).then(() => 'still waiting')])
			expect(read).toMatchObject({ status: 200, body: free.body })
		} finally {
			await holder`commit`
			holder.release()
		}
		for (const write of await Promise.all(writes)) expect(write.status).toBe(200)
	})
})
