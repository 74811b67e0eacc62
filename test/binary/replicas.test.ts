import { afterAll, afterEach, beforeAll, describe, expect, test } from 'bun:test'
import postgres from 'postgres'
import journal from '../../drizzle/meta/_journal.json'
import { MIGRATION_LOCK } from '../../src/database/migrate'
import { asUser, databaseUrl, emptyDatabase, SECRET, taskOf, tasksOf } from '../support/app'
import { buildBinary, killLeftovers, over, printed, readyWithin, type Running, SLOW, startBinary, temporaryFolder } from '../support/binary'

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
			titles.push(taskOf(created).title)
		}
		for (const replica of replicas) {
			const listed = await (await asUser(over(replica.url), sub)).get('/api/tasks')
			expect(tasksOf(listed).map((task) => task.title).sort()).toEqual(titles.toSorted())
		}
		expect(await Promise.all(replicas.map((replica) => replica.stop('SIGTERM')))).toEqual([0, 0, 0])
	}, SLOW)
})

describe.skipIf(!databaseUrl)('Running it: a replica whose migrations wait for another one', () => {
	const WAITING = `"msg":"waiting for another process's migrations"`
	type Other = { commit(): Promise<unknown> }

	// The other replica, stuck midway: it holds the migrations' lock in a transaction left open. The
	// replica is started once it is, and has said that it waits.
	async function waitingBehindAnother(run: (replica: Running, other: Other, own: Awaited<ReturnType<typeof emptyDatabase>>) => Promise<void>) {
		const own = await emptyDatabase('waiting')
		const other = postgres(own.url, { max: 1, onnotice: () => {} })
		const stuck = await other.reserve()
		try {
			await stuck`begin`
			await stuck`select pg_advisory_xact_lock(${MIGRATION_LOCK})`
			const replica = await startBinary({ cwd: temporaryFolder(), env: { BETTER_AUTH_SECRET: SECRET, DATABASE_URL: own.url } })
			await printed(replica, WAITING)
			await run(replica, { commit: () => stuck`commit` }, own)
		} finally {
			stuck.release()
			await other.end()
			await own.drop()
		}
	}

	const servesOnceTheOtherIsDone = async (replica: Running, other: Other) => {
		await other.commit()
		expect(await readyWithin(replica, 20_000)).toBe(true)
		const created = await (await asUser(over(replica.url))).post('/api/tasks', { title: 'after the wait' })
		expect(created.status).toBe(201)
		expect(await replica.stop('SIGTERM')).toBe(0)
	}

	test('says so, listens meanwhile (/health 200, /ready 503), and serves once the other is done', () =>
		waitingBehindAnother(async (replica, other) => {
			expect((await fetch(`${replica.url}/health`)).status).toBe(200)
			expect((await fetch(`${replica.url}/ready`)).status).toBe(503)
			await servesOnceTheOtherIsDone(replica, other)
		}), SLOW)

	// As in a failover, or a backend killed by an operator: the connection of the waiting transaction
	// is closed under it.
	test('its wait cut off (the backend terminated): it stays up, waits again, and serves once the other is done', () =>
		waitingBehindAnother(async (replica, other, own) => {
			// Once its statement waits for the lock.
			const terminate = () => own.admin`
				select pg_terminate_backend(pid) from pg_stat_activity
				where datname = ${own.name} and wait_event_type = 'Lock' and query like '%advisory%'`
			while ((await terminate()).length === 0) await Bun.sleep(20)
			await printed(replica, '"msg":"database unavailable, retrying"')
			// Its next try finds the lock still held, and waits for it again.
			const waits = () => replica.output().split(WAITING).length - 1
			while (waits() < 2) {
				expect(replica.process.exitCode).toBeNull()
				await Bun.sleep(20)
			}
			expect((await fetch(`${replica.url}/health`)).status).toBe(200)
			await servesOnceTheOtherIsDone(replica, other)
		}), SLOW)
})
