import { readMigrationFiles, type MigrationMeta } from 'drizzle-orm/migrator'

// Run as a Bun macro: the migrations are read at build time and inlined, so the compiled
// binary carries them instead of looking for drizzle/ next to itself.
export function bundledMigrations(): MigrationMeta[] {
	return readMigrationFiles({ migrationsFolder: `${import.meta.dir}/../../drizzle` })
}
