import { afterAll, describe, expect, test } from 'bun:test'
import postgres from 'postgres'
import { MAX_SEARCH } from '../../src/tasks/model'
import { asUser, databaseUrl, testApp } from '../support/app'

const TASKS = 10_000

// Each of the tasks is matched against the longest search there is, one that fails at its middle
// character at every place in a description of 10,000 characters: seconds of the server's CPU.
describe.skipIf(!databaseUrl)('A search that costs the database seconds (Postgres)', () => {
	const other = postgres(databaseUrl ?? '', { max: 1, onnotice: () => {} })
	afterAll(() => other.end())

	test('Postgres stops it, it answers 503, another user searches meanwhile, and nothing is left running', async () => {
		const app = await testApp()
		const [mallory, bob] = await Promise.all([asUser(app), asUser(app)])
		await other`insert into tasks (user_id, title, description)
			select ${mallory.sub}, 'long', repeat('a', 10000) from generate_series(1, ${TASKS})`
		await bob.post('/api/tasks', { title: 'Buy milk' })
		const half = 'a'.repeat((MAX_SEARCH - 1) / 2)
		const costly = mallory.get(`/api/tasks?q=${half}b${half}`)
		const running = () => other`select 1 from pg_stat_activity where state = 'active' and query like '%ilike%' and pid <> pg_backend_pid()`
		while ((await running()).length === 0) await Bun.sleep(10)

		const search = await bob.get('/api/tasks?q=MILK')
		expect([search.status, search.body.map((task: { title: string }) => task.title)]).toEqual([200, ['Buy milk']])
		const reply = await costly
		expect([reply.status, reply.body.error_code]).toEqual([503, 'SERVICE_UNAVAILABLE'])
		expect(await running()).toHaveLength(0)
		expect((await bob.get('/api/tasks?q=milk&sort=title')).status).toBe(200)
	})
})
