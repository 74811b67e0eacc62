import { afterEach, describe, expect, test } from 'bun:test'
import { readdirSync } from 'node:fs'
import { decodeJwt } from 'jose'
import pkg from '../../package.json'
import { call, errorOf, SECRET } from '../support/app'
import {
	binaryDatabases,
	buildBinary,
	killLeftovers,
	over,
	runBinary,
	SLOW,
	startBinary,
	temporaryFolder
} from '../support/binary'

await buildBinary()
afterEach(killLeftovers)

const JWT = /^[\w-]+\.[\w-]+\.[\w-]+$/

describe('Running it: the command line', () => {
	test('--help prints the usage and the settings, opens no database and exits 0', async () => {
		const cwd = temporaryFolder()
		const run = await runBinary(['--help'], { cwd, env: {} })
		expect(run.code).toBe(0)
		expect(run.stderr).toBe('')
		expect(run.stdout).toContain('token --sub')
		for (const setting of ['BETTER_AUTH_SECRET', 'DATABASE_URL', 'DATA_DIR', 'PORT', 'CORS_ORIGINS'])
			expect(run.stdout).toContain(setting)
		expect(readdirSync(cwd)).toEqual([])
	}, SLOW)

	test('--version prints the version of package.json', async () => {
		const run = await runBinary(['--version'], { cwd: temporaryFolder(), env: {} })
		expect(run.code).toBe(0)
		expect(run.stdout).toBe(`${pkg.version}\n`)
	}, SLOW)

	test('token --sub alice --ttl 1h prints one HS256 JWT for alice that lasts an hour', async () => {
		const run = await runBinary(['token', '--sub', 'alice', '--ttl', '1h'], {
			cwd: temporaryFolder(),
			env: { BETTER_AUTH_SECRET: SECRET }
		})
		expect(run.code).toBe(0)
		expect(run.stderr).toBe('')
		const token = run.stdout.trimEnd()
		expect(token).toMatch(JWT)
		const claims = decodeJwt(token)
		expect(claims.sub).toBe('alice')
		expect((claims.exp ?? 0) - (claims.iat ?? 0)).toBe(3600)
	}, SLOW)

	for (const database of binaryDatabases)
		test(`the running binary accepts the token command's JWT, and refuses one signed with another secret (${database.name})`, async () => {
			const settings = await database.settings()
			const printed = async (secret: string) =>
				(
					await runBinary(['token', '--sub', 'alice', '--ttl', '1h'], {
						cwd: temporaryFolder(),
						env: { BETTER_AUTH_SECRET: secret }
					})
				).stdout.trimEnd()
			const running = await startBinary({ cwd: temporaryFolder(), env: settings })
			const accepted = await call(over(running.url), 'GET', '/api/tasks', { token: await printed(SECRET) })
			expect(accepted.status).toBe(200)
			expect(Array.isArray(accepted.body)).toBe(true)
			const refused = await call(over(running.url), 'GET', '/api/tasks', { token: await printed(`${SECRET}-other`) })
			expect(refused.status).toBe(401)
			expect(errorOf(refused).error_code).toBe('AUTHENTICATION_REQUIRED')
			expect(await running.stop('SIGTERM')).toBe(0)
		}, SLOW)

	const badUsage: string[][] = [
		['serve-please'],
		['token'],
		['token', '--sub'],
		['token', '--sub', 'alice', '--ttl', 'forever'],
		['token', '--sub', 'alice', '--ttl', '0s'],
		['token', '--sub', 'alice', '--ttl'],
		['token', '--sub', '--ttl', '1h'],
		['token', '--sub', 'alice', 'bob']
	]
	for (const args of badUsage)
		test(`bad usage \`todo-api ${args.join(' ')}\`: exit 2, one line on stderr, no token`, async () => {
			const run = await runBinary(args, { cwd: temporaryFolder(), env: { BETTER_AUTH_SECRET: SECRET } })
			expect(run.listened).toBe(false)
			expect({ code: run.code, stdout: run.stdout }).toEqual({ code: 2, stdout: '' })
			expect(run.stderr.trimEnd().split('\n')).toHaveLength(1)
			expect(run.stderr).toStartWith('todo-api: ')
		}, SLOW)
})
