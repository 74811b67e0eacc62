import { max, sql } from 'drizzle-orm'
import { bigint, pgSchema, serial, text } from 'drizzle-orm/pg-core'
import { jsonLog, type Log } from '../log'
import { bundledMigrations } from './bundled-migrations' with { type: 'macro' }
import { withoutDeadline } from './guarded-pool'
import type { Db } from './index'
import { whileUnavailable } from './unavailable'

// drizzle-kit's bookkeeping table, so its tools see the same history.
const journal = pgSchema('drizzle').table('__drizzle_migrations', {
	id: serial('id').primaryKey(),
	hash: text('hash').notNull(),
	createdAt: bigint('created_at', { mode: 'number' })
})

const migrations = bundledMigrations()

// Any fixed number: every replica must use the same one.
export const MIGRATION_LOCK = 7_346_201

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

/** Applies the migrations, waiting for the database while it is unavailable (whileUnavailable). */
export function migrate(db: Db, log: Log = jsonLog, waiting?: () => void): Promise<void> {
	return withoutDeadline(() => whileUnavailable(() => applyMigrations(db, log, waiting), log, waiting))
}
