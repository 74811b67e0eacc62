import { describe, expect, test } from 'bun:test'
import { sql } from 'drizzle-orm'
import postgres from 'postgres'
import { type Database, openDatabase } from '../../src/database'
import { STATEMENT_DEADLINE_MS, STATEMENT_LIMIT_MS } from '../../src/database/guarded-pool'
import { codeOf } from '../../src/database/unavailable'
import { databaseUrl } from '../support/app'

// How a statement ended: answered, or the code it failed with.
const outcome = (statement: Promise<unknown>) =>
	statement.then(
		() => 'answered',
		(error: unknown) => codeOf(error) ?? String(error)
	)

// A statement whose backend sleeps for `ms`, which Postgres counts as at work.
const sleeping = (database: Database, ms: number) => database.reads.execute(sql`select pg_sleep(${sql.raw(String(ms / 1000))})`)

async function withDatabase(run: (database: Database) => Promise<void>) {
	const database = await openDatabase({ databaseUrl: databaseUrl as string, dataDir: '' })
	try {
		await run(database)
	} finally {
		await database.close()
	}
}

describe.if(Boolean(databaseUrl))('A statement that runs long on a live database (Postgres)', () => {
	test('past the deadline, while its backend is at work, it is answered, and so is every statement of its pool meanwhile', () =>
		withDatabase(async (database) => {
			let done = false
			const long = outcome(sleeping(database, STATEMENT_DEADLINE_MS + 3_000)).finally(() => {
				done = true
			})
			const others: Promise<string>[] = []
			while (!done) {
				others.push(outcome(database.reads.execute(sql`select 1`)))
				await Bun.sleep(250)
			}
			expect(await long).toBe('answered')
			expect(new Set(await Promise.all(others))).toEqual(new Set(['answered']))
		}), 30_000)

	test(`still at work after ${STATEMENT_LIMIT_MS / 1000} s, Postgres stops it (57014, a 503), nothing is left running, and its pool serves on`, () =>
		withDatabase(async (database) => {
			const ms = STATEMENT_LIMIT_MS + 4 * STATEMENT_DEADLINE_MS
			expect(await outcome(sleeping(database, ms))).toBe('57014')
			const admin = postgres(databaseUrl as string, { max: 1, onnotice: () => {} })
			try {
				const [left] = await admin`select count(*)::int as n from pg_stat_activity where state = 'active' and query like ${`%pg_sleep(${ms / 1000})%`} and pid <> pg_backend_pid()`
				expect(left?.n).toBe(0)
			} finally {
				await admin.end()
			}
			expect(await outcome(database.reads.execute(sql`select 1`))).toBe('answered')
		}), 60_000)
})
