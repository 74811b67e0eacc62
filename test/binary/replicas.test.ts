import { afterAll, afterEach, beforeAll, describe, expect, test } from 'bun:test'
import postgres from 'postgres'
import journal from '../../drizzle/meta/_journal.json'
import { asUser, databaseUrl, SECRET } from '../support/app'
import { buildBinary, killLeftovers, over, SLOW, startBinary, temporaryFolder } from '../support/binary'

await buildBinary()
afterEach(killLeftovers)

// Migrations run under an advisory lock, so replicas that start together migrate exactly once.
describe.skipIf(!databaseUrl)('Running it: replicas started together on an empty Postgres database', () => {
	const server = new URL(databaseUrl ?? 'postgres://unused')
	// Named after the run's own database, so whoever runs the suite owns it; dropped at the end.
	const name = `${server.pathname.slice(1) || 'todo'}_replicas_${crypto.randomUUID().slice(0, 8)}`
	const empty = Object.assign(new URL(server), { pathname: `/${name}` }).href
	let admin: postgres.Sql

	beforeAll(async () => {
		admin = postgres(server.href, { max: 1, onnotice: () => {} })
		await admin.unsafe(`create database "${name}"`)
	})
	afterAll(async () => {
		killLeftovers()
		await admin.unsafe(`drop database if exists "${name}" with (force)`)
		await admin.end()
	})

	test('three start at the same instant: all serve, and each migration is recorded once', async () => {
		const replicas = await Promise.all(
			[1, 2, 3].map(() => startBinary({ cwd: temporaryFolder(), env: { BETTER_AUTH_SECRET: SECRET, DATABASE_URL: empty } }))
		)
		const check = postgres(empty, { max: 1, onnotice: () => {} })
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
