// The SQL each scenario's request sends, captured from the app's own query functions through
// Drizzle's logger, so the ceilings (pgbench, raw PGlite) run exactly the statements the API runs.
import type { Logger } from 'drizzle-orm'
import type { Db, Pools } from '../src/database'
import { createTask, deleteTask, getTask, listTasks, setCompleted, updateTask } from '../src/tasks/queries'
import { userId } from './seed'

/** Where a statement's parameter comes from: the request's user or task, or a constant. */
export type Param = { variable: 'uid' | 'id' } | { value: unknown }

export interface Statement {
	sql: string
	params: Param[]
}

const KINDS = ['list', 'page', 'get', 'create', 'put', 'patch', 'delete'] as const
export type Kind = (typeof KINDS)[number]

/** What one request of each kind sends; bodies match the load script's (bench/load.lua). */
const BODY = { title: 'Bench title', description: 'Written by the bench' }

/** The values of a statement's parameters for a request of user `uid` on task `id`. */
export const bind = (statement: Statement, chosen: { uid: string; id: number }): unknown[] =>
	statement.params.map((p) => ('variable' in p ? chosen[p.variable] : p.value))

const UID = userId(1)
const ID = 987_654

/** A Drizzle logger that records what it is given while `recording` is set. */
export function recorder(): Logger & { take(): { sql: string; params: unknown[] }[] } {
	let seen: { sql: string; params: unknown[] }[] = []
	return {
		logQuery: (sql, params) => void seen.push({ sql, params }),
		take() {
			const taken = seen
			seen = []
			return taken
		}
	}
}

const calls: Record<Kind, (pools: Pools) => Promise<unknown>> = {
	list: (pools) => listTasks(pools, UID, {}),
	page: (pools) => listTasks(pools, UID, { limit: 50 }),
	get: (pools) => getTask(pools, UID, ID),
	create: (pools) => createTask(pools, UID, { ...BODY, completed: false }),
	put: (pools) => updateTask(pools, UID, ID, { ...BODY, completed: true }),
	patch: (pools) => setCompleted(pools, UID, ID, true),
	delete: (pools) => deleteTask(pools, UID, ID)
}

class Rollback extends Error {}

/** Runs each kind once inside a rolled-back transaction of `db`, whose logger is `log`. */
export async function captureStatements(db: Db, log: ReturnType<typeof recorder>): Promise<Record<Kind, Statement[]>> {
	const captured = {} as Record<Kind, Statement[]>
	for (const kind of KINDS) {
		try {
			await db.transaction(async (tx) => {
				log.take()
				// A lone list or read by id runs the same statement on either database.
				await calls[kind]({ writes: tx, reads: tx, searches: tx, lookups: tx, kind: 'postgres' })
				captured[kind] = log.take().map(({ sql, params }) => ({
					sql,
					params: params.map((value) =>
						value === UID ? { variable: 'uid' as const } : value === ID ? { variable: 'id' as const } : { value }
					)
				}))
				throw new Rollback()
			})
		} catch (error) {
			if (!(error instanceof Rollback)) throw error
		}
	}
	return captured
}
