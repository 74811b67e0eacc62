import { drizzle } from 'drizzle-orm/postgres-js'
import postgres from 'postgres'
import { jsonLog } from '../log'
import { guardedPool } from './guarded-pool'
import type { Database } from './index'
import { codeOf, whileUnavailable } from './unavailable'

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

/**
 * Settings of the Postgres sessions for searches and other orders, whose cost a user sets: many long
 * texts searched for a long pattern took seconds a statement. Postgres stops such a statement itself
 * (57014, a 503) well before STATEMENT_LIMIT_MS (guarded-pool.ts), so that one user's searches hold
 * the pool's two connections for seconds, not half a minute.
 */
const SEARCH_LIMIT = { statement_timeout: '3s' }

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

type Sql = postgres.Sql

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

/** PostgreSQL or Neon at `url`, through pools of postgres.js connections. */
export function openPostgres(url: string): Database {
	const { url: databaseUrl, target, pooled, bindingRequired } = driverUrl(url)
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
		writes: drizzle(writes.sql),
		reads: drizzle(reads.sql),
		searches: drizzle(searches.sql),
		lookups: drizzle(lookups.sql),
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
