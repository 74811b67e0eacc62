import { afterAll, describe, expect, test } from 'bun:test'
import postgres from 'postgres'
import { LIST_PIPELINE, SEARCH_POOL_SIZE } from '../../src/database/postgres'
import { MAX_SEARCH } from '../../src/tasks/model'
import { asUser, databaseUrl, errorOf, tasksOf, testApp } from '../support/app'

const TASKS = 10_000

// Each of the tasks is matched against the longest search there is, one that fails at its middle
// character at every place in a description of 10,000 characters: seconds of the server's CPU.
describe.skipIf(!databaseUrl)('A search that costs the database seconds (Postgres)', () => {
	const other = postgres(databaseUrl ?? '', { max: 1, onnotice: () => {} })
	afterAll(() => other.end())

	type User = Awaited<ReturnType<typeof asUser>>
	const half = 'a'.repeat((MAX_SEARCH - 1) / 2)
	const costly = (user: User) => user.get(`/api/tasks?q=${half}b${half}`)
	const running = () => other`select 1 from pg_stat_activity where state = 'active' and query like '%ilike%' and pid <> pg_backend_pid()`

	async function mallorysAndBobs(): Promise<[User, User]> {
		const app = await testApp()
		const [mallory, bob] = await Promise.all([asUser(app), asUser(app)])
		await other`insert into tasks (user_id, title, description)
			select ${mallory.sub}, 'long', repeat('a', 10000) from generate_series(1, ${TASKS})`
		await bob.post('/api/tasks', { title: 'Buy milk' })
		return [mallory, bob]
	}

	test('Postgres stops it, it answers 503, another user searches meanwhile, and nothing is left running', async () => {
		const [mallory, bob] = await mallorysAndBobs()
		const reply = costly(mallory)
		while ((await running()).length === 0) await Bun.sleep(10)

		const search = await bob.get('/api/tasks?q=MILK')
		expect([search.status, tasksOf(search).map((task) => task.title)]).toEqual([200, ['Buy milk']])
		expect([(await reply).status, errorOf(await reply).error_code]).toEqual([503, 'SERVICE_UNAVAILABLE'])
		expect(await running()).toHaveLength(0)
		expect((await bob.get('/api/tasks?q=milk&sort=title')).status).toBe(200)
	})

	// Each connection for searches holds LIST_PIPELINE of them, and one more waits in the pool's
	// queue: the last ones wait twice Postgres's limit before they run, longer than the statement
	// deadline, yet nothing is stalled.
	test('more of them than the pool holds: each is stopped by Postgres, and the search of another user queued behind them answers', async () => {
		const [mallory, bob] = await mallorysAndBobs()
		const replies = Array.from({ length: SEARCH_POOL_SIZE * (LIST_PIPELINE + 1) }, () => costly(mallory))
		while ((await running()).length < SEARCH_POOL_SIZE) await Bun.sleep(10)

		const search = await bob.get('/api/tasks?q=MILK')
		expect([search.status, tasksOf(search).map((task) => task.title)]).toEqual([200, ['Buy milk']])
		for (const reply of await Promise.all(replies)) expect([reply.status, errorOf(reply).error_code]).toEqual([503, 'SERVICE_UNAVAILABLE'])
	}, 60_000)
})
