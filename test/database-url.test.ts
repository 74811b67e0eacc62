import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { sql } from 'drizzle-orm'
import postgres from 'postgres'
import { type Database, openDatabase } from '../src/database'
import { PLANNED_ONCE } from '../src/database/postgres'
import { asUser, databaseUrl, type Reply, SECRET, taskOf, tasksOf, testApp, testDatabase } from './support/app'
import { buildBinary, over, startBinary, temporaryFolder } from './support/binary'
import { startPgBouncer } from './support/pgbouncer'
import { canMakeCertificates, startTlsProxy, type TlsProxy } from './support/tls-proxy'

type Bouncer = Awaited<ReturnType<typeof startPgBouncer>>

const USERS = 6
const TASKS_EACH = 5
const ROUNDS = 5

// Named statements a connection has prepared: reads by id have one connection of their own, so a
// read through the app and this count see the same session.
async function preparedAfterARead(database: Database): Promise<number> {
	const user = await asUser(await testApp(database))
	const created = await user.post('/api/tasks', { title: 'behind a pooler' })
	expect((await user.get(`/api/tasks/${taskOf(created).id}`)).status).toBe(200)
	const [row] = await database.lookups
		.select({ count: sql<number>`count(*)::int` })
		.from(sql`pg_prepared_statements`)
		.where(sql`statement not like '%pg_prepared_statements%'`)
	return row?.count ?? -1
}

/**
 * Opens and settles the database as the server does, keeping what settle() logged. Every server
 * here is up, so a start that takes it for unavailable fails at once: its retries would never end,
 * and would hold the test run open past any timeout.
 */
async function settled(url: string, opened: Database[]): Promise<{ database: Database; said: string[] }> {
	const database = await openDatabase({ databaseUrl: url, dataDir: '' })
	opened.push(database)
	const said: string[] = []
	await database.settle(({ msg, error }) => {
		if (msg === 'database unavailable, retrying') throw new Error(`the start took the server for unavailable (${error})`)
		said.push(String(msg))
	})
	return { database, said }
}

/** Users reading, completing and listing their tasks all at once: for each answer, its status and
 * whether it held the caller's own task(s), the one asked for. */
async function answersUnderLoad(database: Database): Promise<string[]> {
	const app = await testApp(database)
	const users = await Promise.all(Array.from({ length: USERS }, () => asUser(app)))
	const tasks = await Promise.all(
		users.map(async (user) => {
			const ids: number[] = []
			for (let i = 0; i < TASKS_EACH; i++) ids.push(taskOf(await user.post('/api/tasks', { title: `${user.sub} ${i}` })).id)
			return { user, ids }
		})
	)
	const answers: string[] = []
	const answer = (reply: Promise<Reply>, own: (reply: Reply) => boolean) =>
		reply.then((answered) => answers.push(`${answered.status} ${own(answered)}`))
	for (let round = 0; round < ROUNDS; round++)
		await Promise.all(
			tasks.flatMap(({ user, ids }) => {
				const isTheTask = (id: number) => (reply: Reply) =>
					reply.status === 200 && taskOf(reply).id === id && taskOf(reply).user_id === user.sub
				return ids.flatMap((id, i) => [
					answer(user.get(`/api/tasks/${id}`), isTheTask(id)),
					answer(user.patch(`/api/tasks/${id}/complete`, { completed: (round + i) % 2 === 0 }), isTheTask(id)),
					answer(user.get('/api/tasks?limit=3'), (reply) =>
						reply.status === 200 && tasksOf(reply).length === 3 && tasksOf(reply).every((task) => task.user_id === user.sub))
				])
			})
		)
	return answers
}

/** The databases a describe block opens, closed once it is done. */
function closedAfterAll(): Database[] {
	const opened: Database[] = []
	afterAll(async () => {
		await Promise.all(opened.map((database) => database.close()))
	})
	return opened
}

/** `url` (the run's database by default) with one query parameter set. */
function withParameter(name: string, value: string, url = databaseUrl as string): string {
	const withIt = new URL(url)
	withIt.searchParams.set(name, value)
	return withIt.href
}

const everyAnswerRight = Array(USERS * TASKS_EACH * ROUNDS * 3).fill('200 true')

describe.skipIf(!databaseUrl)('Running it: DATABASE_URL behind a transaction pooler (Postgres)', () => {
	const opened = closedAfterAll()
	let bouncer: Bouncer
	// As some providers run it: settings it does not know are dropped, not refused.
	const dropping = `ignore_startup_parameters = ${Object.keys(PLANNED_ONCE).join(',')}`
	let lenient: Bouncer
	// The same, lending its backends in turn rather than the last one freed first.
	let inTurn: Bouncer
	beforeAll(async () => {
		await testDatabase()
		;[bouncer, lenient, inTurn] = await Promise.all([
			startPgBouncer(databaseUrl as string),
			startPgBouncer(databaseUrl as string, dropping),
			startPgBouncer(databaseUrl as string, dropping, 'server_round_robin = 1')
		])
	})
	afterAll(async () => {
		await Promise.all([bouncer.stop(), lenient.stop(), inTurn.stop()])
	})

	test('with ?pgbouncer=true it serves, the server never sees that parameter, and no statement is prepared', async () => {
		const { database } = await settled(withParameter('pgbouncer', 'true'), opened)
		expect(await preparedAfterARead(database)).toBe(0)
	})

	test('on Postgres itself no pooler is found and the same read runs as a prepared statement', async () => {
		const { database, said } = await settled(databaseUrl as string, opened)
		expect(said).toEqual([])
		expect(await preparedAfterARead(database)).toBeGreaterThan(0)
	})

	test('through a real PgBouncer without ?pgbouncer=true it finds the pooler, and every user gets their own tasks', async () => {
		const { database, said } = await settled(bouncer.url, opened)
		expect(said).toEqual(['DATABASE_URL leads to a connection pooler: statements are not prepared'])
		expect(await answersUnderLoad(database)).toEqual(everyAnswerRight)
	})

	test('through a PgBouncer that drops the settings it does not know, the same', async () => {
		const { database, said } = await settled(lenient.url, opened)
		expect(said).toEqual(['DATABASE_URL leads to a connection pooler: statements are not prepared'])
		expect(await answersUnderLoad(database)).toEqual(everyAnswerRight)
	})

	test('through a PgBouncer that drops them and lends its backends in turn, the same', async () => {
		// Backends to take turns: several statements at once open them.
		const warm = postgres(inTurn.url, { max: 8, prepare: false, onnotice: () => {} })
		await Promise.all(Array.from({ length: 8 }, () => warm`select pg_sleep(0.05)`))
		await warm.end()
		const { database, said } = await settled(inTurn.url, opened)
		expect(said).toEqual(['DATABASE_URL leads to a connection pooler: statements are not prepared'])
		expect(await answersUnderLoad(database)).toEqual(everyAnswerRight)
	})

	test('through a real PgBouncer with ?pgbouncer=true it does not need to look, and every user gets their own tasks', async () => {
		const { database, said } = await settled(withParameter('pgbouncer', 'true', bouncer.url), opened)
		expect(said).toEqual([])
		expect(await answersUnderLoad(database)).toEqual(everyAnswerRight)
	})
})

describe.skipIf(!databaseUrl)("Running it: DATABASE_URL with libpq's channel_binding, as Neon writes it (Postgres)", () => {
	const opened = closedAfterAll()

	test('channel_binding=prefer or disable: it serves, and the server never sees the parameter', async () => {
		for (const value of ['prefer', 'disable']) {
			const { database, said } = await settled(withParameter('channel_binding', value), opened)
			expect(said).toEqual([])
			expect(await preparedAfterARead(database)).toBeGreaterThan(0)
		}
	})

	test('channel_binding=require: it serves, and says at start that connections are not channel-bound', async () => {
		const { database, said } = await settled(withParameter('channel_binding', 'require'), opened)
		expect(said).toEqual([expect.stringContaining('channel_binding=require')])
		expect(await preparedAfterARead(database)).toBeGreaterThan(0)
	})
})

// Debian's and most distributions' folder for the server's socket.
const SOCKET_FOLDER = '/var/run/postgresql'

async function reachableOverSocket(): Promise<boolean> {
	if (!databaseUrl) return false
	const url = new URL(databaseUrl)
	const probe = postgres(databaseUrl, { path: `${SOCKET_FOLDER}/.s.PGSQL.${url.port || 5432}`, max: 1, connect_timeout: 2, onnotice: () => {} })
	try {
		await probe`select 1`
		return true
	} catch {
		return false
	} finally {
		await probe.end()
	}
}

const overSocket = await reachableOverSocket()

describe.skipIf(!databaseUrl)("Running it: DATABASE_URL with libpq's host parameter (Postgres)", () => {
	const opened = closedAfterAll()

	test('naming a host: it connects there, and the server never sees the parameter', async () => {
		const url = new URL(databaseUrl as string)
		url.searchParams.set('host', url.hostname)
		url.hostname = 'unused.invalid'
		const { database } = await settled(url.href, opened)
		expect(await preparedAfterARead(database)).toBeGreaterThan(0)
	})

	test.skipIf(!overSocket)('naming the socket folder, there or percent-encoded as the host: it connects over the socket', async () => {
		const asHost = new URL(databaseUrl as string)
		asHost.hostname = encodeURIComponent(SOCKET_FOLDER)
		for (const url of [withParameter('host', SOCKET_FOLDER), asHost.href]) {
			const { database } = await settled(url, opened)
			const [row] = await database.lookups.select({ address: sql<string | null>`inet_client_addr()::text` }).from(sql`(values (1)) as once`)
			// A client on the socket has no address.
			expect(row?.address).toBeNull()
			expect(await preparedAfterARead(database)).toBeGreaterThan(0)
		}
	})
})

async function serverHasSsl(): Promise<boolean> {
	if (!databaseUrl) return false
	const admin = postgres(databaseUrl, { max: 1, onnotice: () => {} })
	try {
		const [row] = await admin<{ ssl: string }[]>`show ssl`
		return row?.ssl === 'on'
	} finally {
		await admin.end()
	}
}

const withoutSsl = Boolean(databaseUrl) && !(await serverHasSsl())

describe.skipIf(!withoutSsl)('Running it: DATABASE_URL with sslmode, on a server without SSL (Postgres)', () => {
	const opened = closedAfterAll()

	test('require and verify-full stop the start, saying why, rather than retry it as an outage', async () => {
		for (const mode of ['require', 'verify-full'])
			await expect(settled(withParameter('sslmode', mode), opened)).rejects.toThrow('does not support SSL')
	})

	test('allow and prefer connect without SSL, as libpq does', async () => {
		for (const mode of ['allow', 'prefer']) {
			const { database } = await settled(withParameter('sslmode', mode), opened)
			expect(await preparedAfterARead(database)).toBeGreaterThan(0)
		}
	})
})

describe.skipIf(!databaseUrl)('Running it: DATABASE_URL with any other parameter, sent to the server as a setting (Postgres)', () => {
	const opened = closedAfterAll()

	test('one the server does not know stops the start with the server’s words, rather than retry it as an outage', async () => {
		await expect(settled(withParameter('no_such_setting', 'x'), opened)).rejects.toThrow('unrecognized configuration parameter "no_such_setting"')
	})
})

// This run's Postgres may have no TLS: a proxy in front of it ends TLS with a certificate that no
// authority signed, as a server would whose name or certificate a client cannot check.
describe.skipIf(!databaseUrl || !canMakeCertificates)('Running it: DATABASE_URL with sslmode, on a server with TLS (Postgres)', () => {
	const opened = closedAfterAll()
	let proxy: TlsProxy
	beforeAll(async () => {
		proxy = await startTlsProxy(databaseUrl as string)
	})
	afterAll(() => proxy.close())

	test('verify-full refuses a certificate it cannot check: the start stops, saying why, rather than retry it as an outage', async () => {
		await expect(settled(withParameter('sslmode', 'verify-full', proxy.url), opened)).rejects.toThrow('self signed certificate')
	})

	test('require encrypts without checking the certificate, as libpq does', async () => {
		const before = proxy.sessions
		const { database } = await settled(withParameter('sslmode', 'require', proxy.url), opened)
		expect(await preparedAfterARead(database)).toBeGreaterThan(0)
		expect(proxy.sessions).toBeGreaterThan(before)
	})

	test('verify-full trusts a certificate NODE_EXTRA_CA_CERTS names: the binary serves', async () => {
		await buildBinary()
		const env = {
			BETTER_AUTH_SECRET: SECRET,
			DATABASE_URL: withParameter('sslmode', 'verify-full', proxy.url),
			NODE_EXTRA_CA_CERTS: proxy.certificate,
			WORKERS: '1'
		}
		const running = await startBinary({ cwd: temporaryFolder(), env })
		try {
			const user = await asUser(over(running.url))
			expect((await user.post('/api/tasks', { title: 'over TLS' })).status).toBe(201)
		} finally {
			expect(await running.stop('SIGTERM')).toBe(0)
		}
	}, 60_000)
})
