import { afterAll, describe, expect, test } from 'bun:test'
import postgres from 'postgres'
import { POOL_SIZE } from '../../src/database/postgres'
import { asUser, databaseUrl, taskOf, testApp } from '../support/app'

const app = await testApp()
const WRITERS = POOL_SIZE + 2

// Another client holds a task's row lock: every write to that task waits for it, each holding one
// of the app's connections for writes, and postgres.js pipelines what comes next behind them.
describe.skipIf(!databaseUrl)(`Reads while ${WRITERS} writes wait for a lock, on every connection for writes (Postgres)`, () => {
	const other = postgres(databaseUrl ?? '', { max: 2, onnotice: () => {} })
	afterAll(() => other.end())

	type User = Awaited<ReturnType<typeof asUser>>

	// Resolves with what `read` answered while the writes waited, or 'still waiting' after 10 s.
	async function whileWritesWait(alice: User, read: () => Promise<unknown>) {
		const locked = taskOf(await alice.post('/api/tasks', { title: 'Locked by someone else' })).id
		const holder = await other.reserve()
		let writes: ReturnType<typeof alice.put>[] = []
		try {
			await holder`begin`
			await holder`select 1 from tasks where id = ${locked} for update`
			writes = Array.from({ length: WRITERS }, (_, n) => alice.put(`/api/tasks/${locked}`, { title: `Write ${n}` }))
			const waiting = async () =>
				Number((await other`select count(*) from pg_stat_activity where wait_event_type = 'Lock' and datname = current_database()`)[0]?.count)
			while ((await waiting()) < POOL_SIZE) await Bun.sleep(10)
			return await Promise.race([read(), Bun.sleep(10_000).then(() => 'still waiting')])
		} finally {
			await holder`commit`
			holder.release()
			for (const write of await Promise.all(writes)) expect(write.status).toBe(200)
		}
	}

	test('a task read by its id is answered', async () => {
		const alice = await asUser(app)
		const free = await alice.post('/api/tasks', { title: 'Read meanwhile' })
		const read = await whileWritesWait(alice, () => alice.get(`/api/tasks/${taskOf(free).id}`))
		expect(read).toMatchObject({ status: 200, body: free.body })
	})

	test('the list is answered', async () => {
		const alice = await asUser(app)
		const read = await whileWritesWait(alice, async () => {
			const list = await alice.get('/api/tasks')
			return { status: list.status, total: list.headers.get('x-total-count') }
		})
		expect(read).toEqual({ status: 200, total: '1' })
	})
})
