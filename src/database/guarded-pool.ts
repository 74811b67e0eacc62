import type postgres from 'postgres'
import { isConnectFailure } from './unavailable'

// A network path that silently drops packets (a dead NAT entry, a partition, a hung server) gives
// no error for many minutes, and postgres.js waits that long for an answer: every request on such
// a connection would hang. So once its connection has run a statement this long, unanswered, the
// server is asked over a fresh connection whether the statement's backend is still at work on it:
// if not, or if no answer comes within PROBE_TIMEOUT_MS, the connection is taken for lost, and the
// whole pool is dropped, which fails its statements as unavailable (503) while a fresh pool serves
// what follows. A statement at work is asked about again after as long: a list of several hundred
// megabytes runs for seconds, and taking it for lost failed every other user's list with it. The
// time a statement waits in the pool's queue, or behind another on its connection, does not count:
// a few slow searches would otherwise drop a pool that is well.
export const STATEMENT_DEADLINE_MS = 5_000
const DEADLINE_CHECK_MS = 1_000
const PROBE_TIMEOUT_MS = 1_000

// What a backend at work looks like: running a statement, or sending its answer. One waiting to
// read from its client has not been sent the statement whole, or has been sent nothing since its
// last answer. Behind a pooler in transaction mode the statement's backend is not known (its pid
// is the pooler's own), and the pool is dropped as for a lost connection.
const AT_WORK = `select pid from pg_stat_activity where state = 'active' and wait_event is distinct from 'ClientRead'`

/** A statement at work this long is stopped by Postgres (57014, a 503); one still unanswered a
 * deadline later has its pool dropped, so no request waits on the database much past this. */
export const STATEMENT_LIMIT_MS = 30_000

// A pool is dropped for a failed connect only once it has had this long: a fresh pool would
// otherwise try again at once, and each process open connections to a server that is starting up,
// each a new backend that refuses it, as fast as requests come.
const CONNECT_RETRY_MS = 250

// What a pool still runs when it is closed, after the server's drain, belongs to requests already
// cut off: it gets this long, so that the close fits in the shutdown's grace however the database is.
const CLOSE_TIMEOUT_S = 1

// Migrations may wait for another replica's lock and rewrite big tables: no deadline for them, in
// any pool of the process, while they run.
let migrating = false

export async function withoutDeadline<T>(run: () => Promise<T>): Promise<T> {
	migrating = true
	try {
		return await run()
	} finally {
		migrating = false
	}
}

type Sql = postgres.Sql
type Statement = Promise<unknown>
type Transaction = (tx: postgres.TransactionSql) => unknown

/** The pids of the server's backends at work, asked over a connection of its own; none if the
 * server does not answer in time. */
async function backendsAtWork(open: () => Sql): Promise<Set<number>> {
	const probe = open()
	try {
		const rows = await Promise.race([
			probe.unsafe<{ pid: number }[]>(AT_WORK, [], { prepare: false }),
			Bun.sleep(PROBE_TIMEOUT_MS).then(() => [])
		])
		return new Set(rows.map((row) => row.pid))
	} catch {
		return new Set()
	} finally {
		void probe.end({ timeout: 0 })
	}
}

export interface GuardedPool {
	sql: Sql
	/** A fresh pool made by `open` serves what follows; the old one finishes what it holds. */
	reopen(): void
	end(): Promise<void>
}

/**
 * A postgres.js pool whose statements are held to STATEMENT_DEADLINE_MS, replaced by a fresh one
 * when they are not or when a connect fails. It reads a query's `active` flag, which postgres.js
 * 3.4.9 keeps but does not type.
 */
export function guardedPool(open: () => Sql): GuardedPool {
	let current = open()
	let openedAt = performance.now()
	let closed = false
	const swap = (timeout?: number) => {
		const old = current
		current = open()
		openedAt = performance.now()
		// drizzle installed its own type parsers on the first pool; the new one needs them too.
		Object.assign(current.options.parsers, old.options.parsers)
		Object.assign(current.options.serializers, old.options.serializers)
		void old.end({ timeout })
	}
	const replace = (stalled: Sql) => {
		if (stalled === current && !closed) swap(0)
	}
	// Statements past their deadline at the same moment share one question to the server.
	let asking: Promise<Set<number>> | undefined
	const atWork = () =>
		(asking ??= backendsAtWork(open).finally(() => {
			asking = undefined
		}))
	const watch = <T extends Statement>(statement: T, pool: Sql): T => {
		if (migrating) return statement
		// postgres.js marks a query active while its connection runs it, and gives it the connection's
		// backend as `state` when it is sent; a transaction is neither, and counts from the start.
		const query = statement as T & { active?: boolean; state?: { pid: number }; cancel?: () => void }
		let running = 0
		let vouched = 0
		let settled = false
		const check = async () => {
			// A closed pool cuts what it still runs within CLOSE_TIMEOUT_S.
			if (closed) return
			running = query.active === false ? 0 : running + DEADLINE_CHECK_MS
			vouched = Math.min(vouched, running)
			if (running > STATEMENT_LIMIT_MS + STATEMENT_DEADLINE_MS) return replace(pool)
			if (running > STATEMENT_LIMIT_MS) query.cancel?.()
			if (running - vouched > STATEMENT_DEADLINE_MS) {
				const busy = await atWork()
				if (settled) return
				if (!busy.has(query.state?.pid ?? 0)) return replace(pool)
				vouched = running
			}
			timer = setTimeout(check, DEADLINE_CHECK_MS)
		}
		let timer = setTimeout(check, DEADLINE_CHECK_MS)
		const done = () => {
			settled = true
			clearTimeout(timer)
		}
		// Promise.prototype.then observes a postgres.js query without starting it, as its own then would.
		Promise.prototype.then.call(statement, done, (error: unknown) => {
			done()
			// postgres.js fails one queued statement a connect that fails, and keeps the rest for
			// its next tries: under load, most requests would wait out the whole outage. Dropping
			// the pool fails them all at once, as unavailable.
			if (isConnectFailure(error) && performance.now() - openedAt >= CONNECT_RETRY_MS) replace(pool)
		})
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
				const [options, body] = args.length === 2 ? args : [undefined, args[0]]
				const run: Transaction = (tx) => body(inTransaction(tx, pool))
				return watch(options === undefined ? pool.begin(run) : pool.begin(options, run), pool)
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
