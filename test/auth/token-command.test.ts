import { describe, expect, setDefaultTimeout, test } from 'bun:test'
import { join } from 'node:path'
import { decodeJwt, decodeProtectedHeader } from 'jose'
import pkg from '../../package.json'
import { call, SECRET, taskOf, testApp } from '../support/app'

const MAIN = join(import.meta.dir, '..', '..', 'src', 'main.ts')
// Each test starts `bun src/main.ts` a few times; on a busy machine that is seconds, not ms.
setDefaultTimeout(30_000)

// The source entry, as `bun start` runs it, with nothing in the environment but what is given.
async function todoApi(args: string[], env: Record<string, string> = { BETTER_AUTH_SECRET: SECRET }) {
	const child = Bun.spawn(['bun', MAIN, ...args], {
		env: { PATH: process.env.PATH ?? '', ...env },
		stdin: 'ignore',
		stdout: 'pipe',
		stderr: 'pipe'
	})
	const [stdout, stderr, code] = await Promise.all([
		new Response(child.stdout).text(),
		new Response(child.stderr).text(),
		child.exited
	])
	return { stdout: stdout.trim(), stderr: stderr.trim(), code }
}

const app = await testApp()

describe("A newcomer's path: todo-api token", () => {
	test('prints an HS256 token for --sub that the API accepts, valid 1 h by default', async () => {
		const { stdout, stderr, code } = await todoApi(['token', '--sub', 'alice'])
		expect({ code, stderr }).toEqual({ code: 0, stderr: '' })
		expect(stdout.split('\n')).toHaveLength(1)
		expect(decodeProtectedHeader(stdout)).toEqual({ alg: 'HS256', typ: 'JWT' })
		const claims = decodeJwt(stdout)
		expect(claims.sub).toBe('alice')
		expect((claims.exp ?? 0) - (claims.iat ?? 0)).toBe(3600)

		const created = await call(app, 'POST', '/api/tasks', { token: stdout, body: { title: 'Hello' } })
		expect(created.status).toBe(201)
		expect(taskOf(created).user_id).toBe('alice')
	})

	test('--ttl sets the lifetime', async () => {
		const { stdout, code } = await todoApi(['token', '--sub', 'bob', '--ttl', '90s'])
		expect(code).toBe(0)
		const claims = decodeJwt(stdout)
		expect((claims.exp ?? 0) - (claims.iat ?? 0)).toBe(90)
	})

	test('a token signed with another secret is refused by the API', async () => {
		const { stdout } = await todoApi(['token', '--sub', 'mallory'], { BETTER_AUTH_SECRET: 'x'.repeat(40) })
		expect((await call(app, 'GET', '/api/tasks', { token: stdout })).status).toBe(401)
	})

	test('usage mistakes exit 2 with one line on stderr and no token', async () => {
		const mistakes = [
			['token'],
			['token', '--sub'],
			['token', '--sub', ' '],
			['token', '--sub', '--ttl', '1h'],
			['token', '--subject', 'alice'],
			['token', '--sub', 'alice', '--ttl', 'forever'],
			['token', '--sub', 'alice', '--ttl', '0s']
		]
		const replies = await Promise.all(mistakes.map((args) => todoApi(args)))
		for (const [i, { stdout, stderr, code }] of replies.entries()) {
			expect({ args: mistakes[i], code, stdout }).toEqual({ args: mistakes[i], code: 2, stdout: '' })
			expect(stderr.split('\n')).toHaveLength(1)
			expect(stderr).toStartWith('todo-api: ')
		}
	})

	test('without BETTER_AUTH_SECRET it exits 1 and says so', async () => {
		const { stdout, stderr, code } = await todoApi(['token', '--sub', 'alice'], {})
		expect({ code, stdout }).toEqual({ code: 1, stdout: '' })
		expect(stderr).toContain('BETTER_AUTH_SECRET')
	})

	test('--help names the token command and --version prints the version', async () => {
		const [help, version] = await Promise.all([todoApi(['--help']), todoApi(['--version'])])
		expect(help.code).toBe(0)
		expect(help.stdout).toContain('todo-api token --sub ID')
		expect(version).toEqual({ stdout: pkg.version, stderr: '', code: 0 })
	})
})
