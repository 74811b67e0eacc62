import { afterAll, afterEach, beforeAll, describe, expect, test } from 'bun:test'
import postgres from 'postgres'
import journal from '../../drizzle/meta/_journal.json'
import { asUser, databaseUrl, emptyDatabase, SECRET } from '../support/app'
import { buildBinary, killLeftovers, over, SLOW, startBinary, temporaryFolder } from '../support/binary'

await buildBinary()
afterEach(killLeftovers)

// Migrations run under an advisory lock, so replicas that start together migrate exactly once.
describe.skipIf(!databaseUrl)('Running it: replicas started together on an empty Postgres database', () => {
	let own: Awaited<ReturnType<typeof emptyDatabase>>

	beforeAll(async () => {
		own = await emptyDatabase('replicas')
	})
	afterAll(async () => {
		killLeftovers()
		await own.drop()
	})

	test('three start at the same instant: all serve, and each migration is recorded once', async () => {
		const replicas = await Promise.all(
			[1, 2, 3].map(() => startBinary({ cwd: temporaryFolder(), env: { BETTER_AUTH_SECRET: SECRET, DATABASE_URL: own.url } }))
		)
		const check = postgres(own.url, { max: 1, onnotice: () => {} })
		try {
			const applied = await check<{ created_at: string }[]>`select created_at from drizzle.__drizzle_migrations order by id`
			expect(applied.map((row) => Number(row.created_at))).toEqual(journal.entries.map((entry) => entry.when))
		} finally {
			await check.end()
		}

		// Each writes one task; every replica then sees all three.
		const sub = `user-${crypto.randomUUID()}`
		const titles: string[] = []
		for (const [index, replica] of replicas.entries()) {
			const created = await (await asUser(over(replica.url), sub)).post('/api/tasks', { title: `via replica ${index}` })
			expect(created.status).toBe(201)
			titles.push(created.body.title)
		}
		for (const replica of replicas) {
			const listed = await (await asUser(over(replica.url), sub)).get('/api/tasks')
			expect(listed.body.map((task: { title: string }) => task.title).sort()).toEqual(titles.toSorted())
		}
		expect(await Promise.all(replicas.map((replica) => replica.stop('SIGTERM')))).toEqual([0, 0, 0])
	}, SLOW)
})
