import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core'
import type { Log } from '../log'
import { openEmbedded } from './embedded'
import { openPostgres } from './postgres'

export type Db = PgDatabase<PgQueryResultHKT>

export interface Database {
	/** Writes, migrations and the readiness check. */
	writes: Db
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

/** Where each kind of statement runs, and on which database: what the app and its queries are given. */
export type Pools = Pick<Database, 'writes' | 'reads' | 'searches' | 'lookups' | 'kind'>

/** Postgres when a URL is given, else PGlite in `dataDir`: one schema and one set of queries for both. */
export async function openDatabase(options: { databaseUrl?: string; dataDir: string }): Promise<Database> {
	if (options.databaseUrl) return openPostgres(options.databaseUrl)
	// Loaded here, not at start: a Postgres deployment never evaluates PGlite's code.
	const { drizzle } = await import('drizzle-orm/pglite')
	const { client, unlock } = await openEmbedded(options.dataDir)
	const db = drizzle(client)
	return {
		writes: db,
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
