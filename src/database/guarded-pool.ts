import type postgres from 'postgres'
import { isConnectFailure } from './unavailable'

// A network path that silently drops packets (a dead NAT entry, a partition, a hung server) gives
// no error for many minutes, and postgres.js waits that long for an answer: every request on such
// a connection would hang. A statement its connection has been running this long, unanswered, is
// taken for that: the whole pool is dropped, which fails its statements as unavailable (503), and a
// fresh pool serves what follows. The time a statement waits in the pool's queue, or behind another
// on its connection, does not count: a few slow searches would otherwise drop a pool that is well,
// and fail other users' statements with it.
export const STATEMENT_DEADLINE_MS = 5_000
const DEADLINE_CHECK_MS = 1_000

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
		Promise.prototype.then.call(
			statement,
			() => clearTimeout(timer),
			(error: unknown) => {
				clearTimeout(timer)
				// postgres.js fails one queued statement a connect that fails, and keeps the rest for
				// its next tries: under load, most requests would wait out the whole outage. Dropping
				// the pool fails them all at once, as unavailable.
				if (isConnectFailure(error) && performance.now() - openedAt >= CONNECT_RETRY_MS) replace(pool)
			}
		)
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
