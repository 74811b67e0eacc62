import { afterAll, expect, test } from 'bun:test'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openEmbedded } from '../src/database/embedded'
import { databaseKind } from './support/app'

const dir = mkdtempSync(join(tmpdir(), 'todo-embedded-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

// The PGlite half of the suite; the Postgres half has no embedded database to look at.
test.if(databaseKind === 'pglite')('the embedded Postgres is sized for the one process that owns it, fresh and reopened', async () => {
	for (const start of ['fresh', 'reopened']) {
		const { client, unlock } = await openEmbedded(dir)
		try {
			const { rows } = await client.query<{ buffers: string; connections: string }>(
				"select current_setting('shared_buffers') as buffers, current_setting('max_connections') as connections"
			)
			expect({ start, ...rows[0] }).toEqual({ start, buffers: '16MB', connections: '4' })
		} finally {
			await client.close()
			unlock()
		}
	}
}, 60_000)
