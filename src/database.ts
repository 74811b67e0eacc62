import { max, sql } from 'drizzle-orm'
import { bigint, pgSchema, type PgDatabase, type PgQueryResultHKT, serial, text } from 'drizzle-orm/pg-core'
import { drizzle as drizzlePostgres } from 'drizzle-orm/postgres-js'
import postgres from 'postgres'
import { openEmbedded } from './embedded'
import { jsonLog, type Log } from './log'
import { bundledMigrations } from './migrations' with { type: 'macro' }

export type Db = PgDatabase<PgQueryResultHKT>

export interface Database {
	/** Writes, migrations and the readiness check. */
	db: Db
	/** Where lists in creation order are read, the common case: on Postgres a pool of their own whose
	 * statements are each planned once (PLANNED_ONCE). */
	reads: Db
	/** Every other list of a user's tasks (another order, a search): on Postgres a pool where
	 * Postgres plans each call for its user. */
	searches: Db
	/** Where a task is read by its id: on Postgres a connection of its own. */
	lookups: Db
	kind: 'pglite' | 'postgres'
	/** Run before any other statement: on Postgres, finds whether DATABASE_URL leads to a pooler, and
	 * if so turns prepared statements off; warns when the URL requires channel binding. Tried again
	 * while the database is unavailable; `waiting` is called when a first try fails so. */
	settle(log?: Log, waiting?: () => void): Promise<void>
	close(): Promise<void>
}

/** Where each kind of statement runs: what the app and its queries are given. */
export type Pools = Pick<Database, 'db' | 'reads' | 'searches' | 'lookups'>

// drizzle-kit's bookkeeping table, so its tools see the same history.
const journal = pgSchema('drizzle').table('__drizzle_migrations', {
	id: serial('id').primaryKey(),
	hash: text('hash').notNull(),
	createdAt: bigint('created_at', { mode: 'number' })
})

const migrations = bundledMigrations()

/** Postgres connections in each process's pool for writes, and as many in its pool for lists. */
export const POOL_SIZE = 4

/** Connections in each process's pool for searches and other orders, which are rarer. */
export const SEARCH_POOL_SIZE = 2

/**
 * Settings of the Postgres sessions that read lists in creation order. By default Postgres plans a
 * prepared statement again on every call while a plan for the values at hand looks cheaper than
 * its generic plan, which is costed for an average user: it did for every list without a limit,
 * and for every page of a user with 100,000 tasks. In creation order the generic plan is right for
 * every user, since the one index on a user's tasks is in that order (src/tasks/table.ts). It is
 * not for other orders, searches and counts: with a few users holding most tasks, a small user's
 * list by title became a scan of the whole table. Those stay on the default.
 */
export const PLANNED_ONCE = { plan_cache_mode: 'force_generic_plan' }

/**
 * Queries each connection for lists holds at once; the pool keeps the rest and hands each to the
 * first connection that is free. On a busy box the kernel can leave one backend off the CPU for
 * many milliseconds, and with postgres.js's default of 100 every list pipelined behind it waited
 * that long while the pool's other connections were idle: under full load here, a p99 of 0.1 to
 * 2 s, against 20 to 60 ms with this limit, at the same rate. Writes keep the default, since they
 * wait for the disk rather than the CPU and lost a tenth of their rate with it; so does the one
 * connection for reads by id, where there is no other connection to wait for. Across a network,
 * a connection for lists serves at most two per round trip: 8,000 a second per process at 1 ms.
 */
export const LIST_PIPELINE = 2

/** postgres.js's option for a connection holding at most `queries` at once: its max_pipeline counts
 * only those waiting behind the one running, and is missing from its types (hence a spread). */
export const holding = (queries: number | undefined) => (queries ? { max_pipeline: queries - 1 } : {})

// Any fixed number: every replica must use the same one.
export const MIGRATION_LOCK = 7_346_201

// Poolers in transaction mode (Neon's "-pooler" hosts, PgBouncer) cannot keep prepared statements;
// `pgbouncer=true` marks any other host as one, and settle() finds the rest. libpq's
// `channel_binding`, which Neon's connection strings carry, asks the client for SCRAM-SHA-256-PLUS,
// which postgres.js does not do. libpq's `host` names where to connect (targetOf). All three are
// taken out of the URL: postgres.js would send them on as settings, which Postgres and PgBouncer
// refuse.
const NOT_SETTINGS = ['pgbouncer', 'channel_binding', 'host']

/** Where postgres.js connects when the URL's host does not say it the way postgres.js reads it:
 * libpq's `host` parameter, and a socket folder, given there or percent-encoded as the host. */
type Target = { path: string } | { host: string } | undefined

function targetOf(parsed: URL): Target {
	const named = parsed.searchParams.get('host')
	const host = named ?? decodeURIComponent(parsed.hostname)
	if (host.startsWith('/')) return { path: `${host}/.s.PGSQL.${parsed.port || 5432}` }
	return named === null ? undefined : { host: named }
}

function driverUrl(url: string): { url: string; target: Target; pooled: boolean; bindingRequired: boolean } {
	const parsed = new URL(url)
	const target = targetOf(parsed)
	const pooled = parsed.hostname.includes('-pooler') || parsed.searchParams.get('pgbouncer') === 'true'
	const bindingRequired = parsed.searchParams.get('channel_binding') === 'require'
	if (!NOT_SETTINGS.some((name) => parsed.searchParams.has(name))) return { url, target, pooled, bindingRequired }
	for (const name of NOT_SETTINGS) parsed.searchParams.delete(name)
	return { url: parsed.href, target, pooled, bindingRequired }
}

// A network path that silently drops packets (a dead NAT entry, a partition, a hung server) gives
// no error for many minutes, and postgres.js waits that long for an answer: every request on such
// a connection would hang. A statement its connection has been running this long, unanswered, is
// taken for that: the whole pool is dropped, which fails its statements as unavailable (503), and a
// fresh pool serves what follows. The time a statement waits in the pool's queue, or behind another
// on its connection, does not count: a few slow searches would otherwise drop a pool that is well,
// and fail other users' statements with it.
export const STATEMENT_DEADLINE_MS = 5_000
const DEADLINE_CHECK_MS = 1_000

/**
 * Settings of the Postgres sessions for searches and other orders, whose cost a user sets: many long
 * texts searched for a long pattern took seconds a statement. Postgres stops such a statement itself
 * (57014, a 503) before STATEMENT_DEADLINE_MS: the deadline would drop the whole pool, failing other
 * users' searches with it, and leave the statement running on the server.
 */
export const SEARCH_LIMIT = { statement_timeout: '3s' }

// Migrations may wait for another replica's lock and rewrite big tables: no deadline for them.
let migrating = false

type Sql = postgres.Sql
type Statement = Promise<unknown>
type Transaction = (tx: postgres.TransactionSql) => unknown

const backendOf = async (sql: Sql) =>
	(await sql.unsafe<{ pid: number }[]>('select pg_backend_pid() as pid', [], { prepare: false }))[0]?.pid

/**
 * Whether DATABASE_URL leads to a pooler, which a URL may not say (a PgBouncer of one's own, another
 * provider's): through one in transaction mode, prepared statements answered requests with other
 * statements' rows, other users' tasks. PgBouncer, in any mode, refuses at connect the setting that
 * `lists` sends (08P01). One that lets it pass lends each statement whichever backend is free: two
 * statements at once get two, and then each connection's next one gets the backend freed last
 * (PgBouncer's default) or the next in turn (server_round_robin), so at least one of them gets
 * another backend than before. Postgres keeps a backend for each connection, and so does a proxy
 * such as Neon's direct hosts.
 */
async function behindPooler(writes: Sql, lists: Sql): Promise<boolean> {
	const refused = (error: unknown) => {
		if (codeOf(error) === '08P01') return undefined
		throw error
	}
	// Both connections open at once: the start waits for one connection, not two.
	const [first, other] = await Promise.all([backendOf(writes), backendOf(lists).catch(refused)])
	if (other === undefined || other === first) return true
	return (await backendOf(writes)) !== first || (await backendOf(lists)) !== other
}

interface GuardedPool {
	sql: Sql
	/** A fresh pool made by `open` serves what follows; the old one finishes what it holds. */
	reopen(): void
	end(): Promise<void>
}

// What a pool still runs when it is closed, after the server's drain, belongs to requests already
// cut off: it gets this long, so that the close fits in the shutdown's grace however the database is.
const CLOSE_TIMEOUT_S = 1

function guardedPool(open: () => Sql): GuardedPool {
	let current = open()
	let closed = false
	const swap = (timeout?: number) => {
		const old = current
		current = open()
		// drizzle installed its own type parsers on the first pool; the new one needs them too.
		Object.assign(current.options.parsers, old.options.parsers)
		Object.assign(current.options.serializers, old.options.serializers)
		void old.end({ timeout })
	}
	const replace = (stalled: Sql) => {
		if (stalled === current && !closed) swap(0)
	}
	const watch = <T extends Statement>(statement: T, pool: Sql): T => {
		if (migrating) return statement
		// postgres.js marks a query active while its connection runs it; a transaction is not a query,
		// and counts from the start.
		const query = statement as T & { active?: boolean }
		let running = 0
		let timer = setTimeout(function check() {
			running = query.active === false ? 0 : running + DEADLINE_CHECK_MS
			if (running > STATEMENT_DEADLINE_MS) replace(pool)
			else timer = setTimeout(check, DEADLINE_CHECK_MS)
		}, DEADLINE_CHECK_MS)
		// Promise.prototype.then observes a postgres.js query without starting it, as its own then would.
		Promise.prototype.then.call(statement, () => clearTimeout(timer), () => clearTimeout(timer))
		return statement
	}
	const forward = (target: object, property: string | symbol) => {
		const value: unknown = Reflect.get(target, property)
		return typeof value === 'function' ? value.bind(target) : value
	}
	const inTransaction = (tx: postgres.TransactionSql, pool: Sql) =>
		new Proxy(tx, {
			get: (target, property) =>
				property === 'unsafe'
					? (...args: Parameters<Sql['unsafe']>) => watch(target.unsafe(...args), pool)
					: forward(target, property)
		})
	const sql = new Proxy(current, {
		get(_first, property) {
			const pool = current
			if (property === 'unsafe') return (...args: Parameters<Sql['unsafe']>) => watch(pool.unsafe(...args), pool)
			if (property !== 'begin') return forward(pool, property)
			return (...args: [string, Transaction] | [Transaction]) => {
				const body = args.pop() as Transaction
				const run: Transaction = (tx) => body(inTransaction(tx, pool))
				return watch(args.length ? pool.begin(args[0] as string, run) : pool.begin(run), pool)
			}
		}
	})
	return {
		sql,
		reopen: () => swap(),
		end() {
			closed = true
			return current.end({ timeout: CLOSE_TIMEOUT_S })
		}
	}
}

export async function openDatabase(options: { databaseUrl?: string; dataDir: string }): Promise<Database> {
	if (options.databaseUrl) {
		const { url: databaseUrl, target, pooled, bindingRequired } = driverUrl(options.databaseUrl)
		let prepare = !pooled
		const connect = (max: number, { settings = {}, pipeline }: { settings?: Record<string, string>; pipeline?: number } = {}) =>
			guardedPool(() =>
				postgres(databaseUrl, {
					...target,
					max,
					...holding(pipeline),
					connect_timeout: 3,
					idle_timeout: 60,
					// A reconnect waits at most half a second: the default grows to 20 s during an outage,
					// and every request then waits that long for its 503, and the recovery as long.
					backoff: (attempt: number) => Math.min(0.05 * 2 ** attempt, 0.5),
					// Named prepared statements: each query is one round trip once its connection knows it.
					prepare,
					// Statements that are not prepared are planned on every call anyway, and a pooler refuses
					// settings it does not know at connect.
					...(prepare && { connection: settings }),
					// No array or custom types are read, so skip the type lookup on every new connection.
					fetch_types: false,
					onnotice: () => {}
				})
			)
		// Per process, and WORKERS runs one process per core: a few busy connections per core keep
		// Postgres saturated, and postgres.js pipelines further queries on them (lists at most
		// LIST_PIPELINE deep). Reads and writes never share a connection: a commit that waits for the
		// disk, or a write that waits for a row lock, would hold up every read pipelined behind it.
		// Reads of one task by its id get one connection of their own: all of them pipelined on one
		// socket serve a third more per second, and nothing slow can queue ahead of them there. Lists
		// would lose a sixth on one connection, and one slow search would hold up every list of the
		// process behind it; searches have a pool of their own, since they need other plans (PLANNED_ONCE).
		const writes = connect(POOL_SIZE)
		const reads = connect(POOL_SIZE, { settings: PLANNED_ONCE, pipeline: LIST_PIPELINE })
		const searches = connect(SEARCH_POOL_SIZE, { settings: SEARCH_LIMIT, pipeline: LIST_PIPELINE })
		const lookups = connect(1)
		const pools = [writes, reads, searches, lookups]
		return {
			db: drizzlePostgres(writes.sql),
			reads: drizzlePostgres(reads.sql),
			searches: drizzlePostgres(searches.sql),
			lookups: drizzlePostgres(lookups.sql),
			kind: 'postgres',
			async settle(log = jsonLog, waiting) {
				if (bindingRequired)
					log({ level: 'warn', msg: 'DATABASE_URL asks for channel_binding=require, which postgres.js cannot do: connections are not channel-bound' })
				if (!prepare) return
				const pooler = await whileUnavailable(() => behindPooler(writes.sql, reads.sql), log, waiting)
				if (!pooler) return
				log({ level: 'info', msg: 'DATABASE_URL leads to a connection pooler: statements are not prepared' })
				prepare = false
				for (const pool of pools) pool.reopen()
			},
			close: async () => {
				await Promise.all(pools.map((pool) => pool.end()))
			}
		}
	}
	// Loaded here, not at start: a Postgres deployment never evaluates PGlite's code.
	const { drizzle: drizzlePglite } = await import('drizzle-orm/pglite')
	const { client, unlock } = await openEmbedded(options.dataDir)
	const db = drizzlePglite(client)
	return {
		db,
		reads: db,
		searches: db,
		lookups: db,
		kind: 'pglite',
		settle: async () => {},
		async close() {
			await client.close()
			unlock()
		}
	}
}

// When the newest migration applied to this database was written; 0 when none was.
async function lastApplied(db: Pick<Db, 'select'>): Promise<number> {
	const [last] = await db.select({ at: max(journal.createdAt) }).from(journal)
	return last?.at ?? 0
}

// The common start: a database some replica has already brought up to date. One read, no lock,
// no transaction; anything else (no journal yet, an older one, an error) takes the locked path.
async function upToDate(db: Db): Promise<boolean> {
	try {
		return (await lastApplied(db)) === migrations.at(-1)?.folderMillis
	} catch {
		return false
	}
}

// Drizzle's own migrator races when replicas start together; this one takes a transaction-scoped
// advisory lock first, so exactly one replica applies each migration and the rest wait, then skip.
async function applyMigrations(db: Db, log: Log, waiting?: () => void): Promise<void> {
	if (await upToDate(db)) return
	await db.transaction(async (tx) => {
		// Another replica migrating holds the lock for as long as that takes; one that hangs holds it
		// until it is stopped. Either way the wait is said, and the process listens meanwhile, as when
		// the database is away, rather than look dead to whoever probes it.
		const [lock] = await tx
			.select({ taken: sql<boolean>`pg_try_advisory_xact_lock(${MIGRATION_LOCK})` })
			.from(sql`(values (1)) as once`)
		if (!lock?.taken) {
			log({ level: 'info', msg: "waiting for another process's migrations", lock: MIGRATION_LOCK })
			waiting?.()
			await tx.execute(sql`select pg_advisory_xact_lock(${MIGRATION_LOCK})`)
		}
		await tx.execute(sql`create schema if not exists drizzle`)
		await tx.execute(
			sql`create table if not exists drizzle.__drizzle_migrations (id serial primary key, hash text not null, created_at bigint)`
		)
		const last = await lastApplied(tx)
		for (const migration of migrations) {
			if (migration.folderMillis <= last) continue
			for (const statement of migration.sql) await tx.execute(sql.raw(statement))
			await tx.insert(journal).values({ hash: migration.hash, createdAt: migration.folderMillis })
		}
	})
}

const START_RETRY_MS = 1_000

/**
 * A step of the start: a database that cannot be reached is tried again every START_RETRY_MS for as
 * long as it takes (it may start after the service, or be down); `waiting` is called when the first
 * try fails so. Any other error is thrown.
 */
async function whileUnavailable<T>(step: () => Promise<T>, log: Log, waiting?: () => void): Promise<T> {
	for (let attempt = 1; ; attempt++) {
		try {
			return await step()
		} catch (error) {
			if (!isUnavailable(error)) throw error
			log({ level: 'warn', msg: 'database unavailable, retrying', attempt, error: codeOf(error) })
			if (attempt === 1) waiting?.()
			await Bun.sleep(START_RETRY_MS)
		}
	}
}

/** Applies the migrations, waiting for the database while it is unavailable (whileUnavailable). */
export async function migrate(db: Db, log: Log = jsonLog, waiting?: () => void): Promise<void> {
	migrating = true
	try {
		await whileUnavailable(() => applyMigrations(db, log, waiting), log, waiting)
	} finally {
		migrating = false
	}
}

export async function ping(db: Db): Promise<void> {
	await db.execute(sql`select 1`)
}

const UNAVAILABLE_CODES = new Set([
	'ECONNREFUSED',
	'ECONNRESET',
	'ETIMEDOUT',
	'EPIPE',
	'ENOTFOUND',
	'EAI_AGAIN',
	'EHOSTUNREACH',
	// The route to the database gone: an interface or a VPN link down, no route for its address.
	'ENETUNREACH',
	'ENETDOWN',
	'ENETRESET',
	'EHOSTDOWN',
	'ECONNABORTED',
	'EADDRNOTAVAIL',
	'CONNECT_TIMEOUT',
	'CONNECTION_CLOSED',
	'CONNECTION_ENDED',
	'CONNECTION_DESTROYED',
	'57P01', // admin_shutdown
	'57P02', // crash_shutdown
	'57P03', // cannot_connect_now
	'57014' // query_canceled: a search that ran past SEARCH_LIMIT
])

// Drizzle wraps driver errors; the driver's code sits on the cause.
export function codeOf(error: unknown): string | undefined {
	for (let e = error; e instanceof Error; e = e.cause) {
		const code = (e as { code?: unknown }).code
		if (typeof code === 'string') return code
	}
	return undefined
}

/** The database cannot be reached right now: a 503, not a bug. */
export function isUnavailable(error: unknown): boolean {
	const code = codeOf(error)
	// Class 08 is a connection lost; class 53, resources the server has run out of for now: a full
	// disk (53100), memory, connections (53300).
	return code !== undefined && (UNAVAILABLE_CODES.has(code) || code.startsWith('08') || code.startsWith('53'))
}
