import { afterEach, describe, expect, test } from 'bun:test'
import { readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { databaseUrl, emptyDatabase, SECRET } from '../support/app'
import {
	binaryDatabases,
	buildBinary,
	initialisedDataDir,
	killLeftovers,
	listenersOn,
	runBinary,
	SLOW,
	startBinary,
	temporaryFolder
} from '../support/binary'

await buildBinary()
afterEach(killLeftovers)

const badSettings: [setting: string, what: string, env: Record<string, string | undefined>][] = [
	['BETTER_AUTH_SECRET', 'missing', { BETTER_AUTH_SECRET: undefined }],
	['BETTER_AUTH_SECRET', 'of 31 bytes', { BETTER_AUTH_SECRET: 'x'.repeat(31) }],
	['BETTER_AUTH_SECRET', 'of 40 spaces', { BETTER_AUTH_SECRET: ' '.repeat(40) }],
	['DATABASE_URL', 'not-a-url', { DATABASE_URL: 'not-a-url' }],
	['DATABASE_URL', 'mysql://x', { DATABASE_URL: 'mysql://x' }],
	['DATABASE_URL', 'with sslmode=bogus', { DATABASE_URL: 'postgres://127.0.0.1/db?sslmode=bogus' }],
	['BETTER_AUTH_URL', '::bad', { BETTER_AUTH_URL: '::bad' }],
	['PORT', 'abc', { PORT: 'abc' }],
	['PORT', '70000', { PORT: '70000' }],
	['CORS_ORIGINS', 'notaurl', { CORS_ORIGINS: 'notaurl' }],
	['CORS_ORIGINS', '",,,"', { CORS_ORIGINS: ',,,' }]
]

describe('Running it: a bad setting stops the process at start, before it listens', () => {
	for (const [setting, what, env] of badSettings)
		test(`${setting} ${what}: non-zero exit, one line on stderr naming ${setting}`, async () => {
			const cwd = temporaryFolder()
			const run = await runBinary([], { cwd, env: { BETTER_AUTH_SECRET: SECRET, ...env } })
			expect(run.listened).toBe(false)
			expect(run.code).not.toBe(0)
			expect(run.stdout).toBe('')
			const lines = run.stderr.trimEnd().split('\n')
			expect(lines).toHaveLength(1)
			expect(lines[0]).toContain(setting)
			// It stopped before opening a database: no ./data was made.
			expect(readdirSync(cwd)).toEqual([])
		}, SLOW)

	test('settings come from the environment alone: a .env or bunfig.toml where it runs is not read', async () => {
		const cwd = temporaryFolder()
		writeFileSync(join(cwd, '.env'), `BETTER_AUTH_SECRET=${'x'.repeat(40)}\n`)
		writeFileSync(join(cwd, 'bunfig.toml'), 'preload = ["./preload.ts"]\n')
		writeFileSync(join(cwd, 'preload.ts'), 'console.error("preloaded")\n')
		const run = await runBinary([], { cwd, env: { BETTER_AUTH_SECRET: undefined } })
		expect(run.listened).toBe(false)
		expect(run.code).not.toBe(0)
		expect(run.stderr.trimEnd().split('\n')).toEqual([expect.stringContaining('BETTER_AUTH_SECRET')])
	}, SLOW)

	// The control: the same start with good settings listens, so the refusals above are the settings'
	// doing. The secret is 16 two-byte characters: 32 bytes is enough even though it is 16 characters.
	for (const database of binaryDatabases)
		test(`a secret of exactly 32 bytes is accepted (${database.name})`, async () => {
			const secret = 'é'.repeat(16)
			const running = await startBinary({
				cwd: temporaryFolder(),
				env: { ...(await database.settings()), BETTER_AUTH_SECRET: secret }
			})
			expect((await fetch(`${running.url}/ready`)).status).toBe(200)
			expect(await running.stop('SIGTERM')).toBe(0)
		}, SLOW)
})

// Every other test sets HOST=127.0.0.1, and a server that ignored HOST would pass them all: what
// decides is the address of the socket it listens on.
describe('Running it: HOST decides where it listens', () => {
	const hosts: [host: string | undefined, address: string][] = [['127.0.0.1', '127.0.0.1'], [undefined, '0.0.0.0']]
	for (const [host, address] of hosts)
		test(`${host ? `HOST=${host}` : 'HOST unset'}: it listens on ${address} alone`, async () => {
			const env = { BETTER_AUTH_SECRET: SECRET, DATA_DIR: await initialisedDataDir(), HOST: host }
			const running = await startBinary({ cwd: temporaryFolder(), env })
			const pid = running.process.pid
			const sockets = listenersOn(Number(new URL(running.url).port), [pid]).get(pid) ?? []
			expect(sockets.map((socket) => socket.address)).toEqual([address])
			expect(await running.stop('SIGTERM')).toBe(0)
		}, SLOW)
})

describe('Running it: a database that cannot be migrated stops the start with its reason', () => {
	// No schema to create the tables in: the database's own words must reach the one line, not only
	// the statement that failed.
	test.skipIf(!databaseUrl)('Postgres: search_path names no schema, so the first CREATE TABLE fails', async () => {
		const own = await emptyDatabase('unmigratable')
		try {
			const url = new URL(own.url)
			url.searchParams.set('search_path', 'nowhere')
			const run = await runBinary([], { cwd: temporaryFolder(), env: { BETTER_AUTH_SECRET: SECRET, DATABASE_URL: url.href } })
			expect(run.listened).toBe(false)
			expect(run.code).toBe(1)
			expect(run.stderr.trimEnd().split('\n')).toEqual([expect.stringMatching(/^todo-api: cannot start: no schema has been selected to create in, in: .*CREATE TABLE/)])
		} finally {
			await own.drop()
		}
	}, SLOW)
})
