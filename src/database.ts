import { max, sql } from 'drizzle-orm'
import { bigint, pgSchema, type PgDatabase, type PgQueryResultHKT, serial, text } from 'drizzle-orm/pg-core'
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite'
import { drizzle as drizzlePostgres } from 'drizzle-orm/postgres-js'
import postgres from 'postgres'
import { openEmbedded } from './embedded'
import { bundledMigrations } from './migrations' with { type: 'macro' }

export type Db = PgDatabase<PgQueryResultHKT>

export interface Database {
	db: Db
	kind: 'pglite' | 'postgres'
	close(): Promise<void>
}

// drizzle-kit's bookkeeping table, so its tools see the same history.
const journal = pgSchema('drizzle').table('__drizzle_migrations', {
	id: serial('id').primaryKey(),
	hash: text('hash').notNull(),
	createdAt: bigint('created_at', { mode: 'number' })
})

// Any fixed number: every replica must use the same one.
const MIGRATION_LOCK = 7_346_201

// Poolers in transaction mode (Neon's "-pooler" hosts, PgBouncer) cannot keep prepared statements.
const isPooled = (url: string) => {
	const { hostname, searchParams } = new URL(url)
	return hostname.includes('-pooler') || searchParams.get('pgbouncer') === 'true'
}

export async function openDatabase(options: { databaseUrl?: string; dataDir: string }): Promise<Database> {
	if (options.databaseUrl) {
		const client = postgres(options.databaseUrl, {
			max: 10,
			connect_timeout: 3,
			idle_timeout: 60,
			prepare: !isPooled(options.databaseUrl),
			onnotice: () => {}
		})
		return { db: drizzlePostgres(client), kind: 'postgres', close: () => client.end({ timeout: 5 }) }
	}
	const { client, unlock } = await openEmbedded(options.dataDir)
	return {
		db: drizzlePglite(client),
		kind: 'pglite',
		async close() {
			await client.close()
			unlock()
		}
	}
}

// Drizzle's own migrator races when replicas start together; this one takes a transaction-scoped
// advisory lock first, so exactly one replica applies each migration and the rest wait, then skip.
export async function migrate(db: Db): Promise<void> {
	await db.transaction(async (tx) => {
		await tx.execute(sql`select pg_advisory_xact_lock(${MIGRATION_LOCK})`)
		await tx.execute(sql`create schema if not exists drizzle`)
		await tx.execute(
			sql`create table if not exists drizzle.__drizzle_migrations (id serial primary key, hash text not null, created_at bigint)`
		)
		const [last] = await tx.select({ at: max(journal.createdAt) }).from(journal)
		for (const migration of bundledMigrations()) {
			if (migration.folderMillis <= (last?.at ?? 0)) continue
			for (const statement of migration.sql) await tx.execute(sql.raw(statement))
			await tx.insert(journal).values({ hash: migration.hash, createdAt: migration.folderMillis })
		}
	})
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
	'CONNECT_TIMEOUT',
	'CONNECTION_CLOSED',
	'CONNECTION_ENDED',
	'CONNECTION_DESTROYED',
	'57P01', // admin_shutdown
	'57P02', // crash_shutdown
	'57P03', // cannot_connect_now
	'53300' // too_many_connections
])

// Drizzle wraps driver errors; the driver's code sits on the cause.
function codeOf(error: unknown): string | undefined {
	for (let e = error; e instanceof Error; e = e.cause) {
		const code = (e as { code?: unknown }).code
		if (typeof code === 'string') return code
	}
	return undefined
}

/** The database cannot be reached right now: a 503, not a bug. */
export function isUnavailable(error: unknown): boolean {
	const code = codeOf(error)
	return code !== undefined && (UNAVAILABLE_CODES.has(code) || code.startsWith('08'))
}
