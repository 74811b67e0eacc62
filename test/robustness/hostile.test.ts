import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { connect, type Socket } from 'node:net'
import { sql } from 'drizzle-orm'
import { errorOf, newUser, ORIGIN, replyOf, SECRET, sign, taskOf, testDatabase } from '../support/app'
import { binaryDatabases, killLeftovers, ROOT, type Running, startBinary, startScript, temporaryFolder } from '../support/binary'
import { errorFields, flushLog, jsonLog } from '../../src/log'
import { binaryCopy, rawExchange } from './processes'

// The binary on this run's database: Postgres when the run has one, else PGlite.
const database = binaryDatabases.at(-1) ?? binaryDatabases[0]
let running: Running
let settings: Record<string, string | undefined>

beforeAll(async () => {
	const binary = await binaryCopy()
	settings = await database!.settings()
	running = await startBinary({ binary, cwd: temporaryFolder(), env: settings })
}, 60_000)

afterAll(async () => {
	await running?.stop('SIGTERM')
	killLeftovers()
})

interface Raw {
	socket: Socket
	received: () => string
	closed: Promise<void>
}

function rawConnection(head: string): Promise<Raw> {
	const { port } = new URL(running.url)
	const socket = connect(Number(port), '127.0.0.1')
	let received = ''
	socket.setEncoding('latin1')
	socket.on('data', (data: string) => {
		received += data
	})
	socket.on('error', () => {})
	const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()))
	return new Promise((resolve, reject) => {
		socket.once('error', reject)
		socket.once('connect', () => {
			if (head) socket.write(head)
			resolve({ socket, received: () => received, closed })
		})
	})
}

// What the connection has received once it holds `marker`, or after ten seconds.
async function receivedBy(connection: Raw, marker: string): Promise<string> {
	const deadline = Date.now() + 10_000
	while (!connection.received().includes(marker) && Date.now() < deadline) await Bun.sleep(20)
	return connection.received()
}

async function healthy(): Promise<void> {
	const token = await sign({ sub: newUser() })
	expect((await fetch(`${running.url}/health`)).status).toBe(200)
	const created = await fetch(`${running.url}/api/tasks`, {
		method: 'POST',
		headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
		body: JSON.stringify({ title: 'still served' })
	})
	expect(created.status).toBe(201)
}

// Better Auth's JWT plugin puts the whole user in its tokens, an avatar sent as a data URL included:
// past Bun's default limit of 16 KiB.
async function expectTheAppToAnswerA60kToken(url: string): Promise<void> {
	const response = await fetch(`${url}/api/tasks`, { headers: { authorization: `Bearer ${'a'.repeat(60_000)}` } })
	expect(response.status).toBe(401)
	expect(response.headers.get('x-request-id')).toBeString()
	expect(errorOf(await replyOf(response)).error_code).toBe('AUTHENTICATION_REQUIRED')
}

// The binary's JSON log, a line an object.
const linesOf = (output: string) =>
	output
		.trim()
		.split('\n')
		.map((line) => JSON.parse(line) as Record<string, unknown>)

const post = (token: string, length: string) =>
	`POST /api/tasks HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${token}\r\n` +
	`Content-Type: application/json\r\n${length}\r\n\r\n`

describe('Running it: hostile clients are bounded by the server and others are still served', () => {
	test('slow and never-ending bodies (slowloris) are cut off by the server, write nothing, and do not stop others', async () => {
		const user = newUser()
		const token = await sign({ sub: user })
		const slow = await Promise.all([
			// A body that trickles in, one byte at a time.
			...Array.from({ length: 40 }, () => rawConnection(`${post(token, 'Content-Length: 5000')}{"title":"`)),
			// A declared body that never comes.
			...Array.from({ length: 20 }, () => rawConnection(`${post(token, 'Content-Length: 1000')}{"ti`)),
			// A chunked body that never ends.
			...Array.from({ length: 20 }, () => rawConnection(`${post(token, 'Transfer-Encoding: chunked')}5\r\n{"tit\r\n`))
		])
		let closedCount = 0
		for (const connection of slow) void connection.closed.then(() => closedCount++)
		const trickle = setInterval(() => {
			for (const connection of slow.slice(0, 40)) if (!connection.socket.destroyed) connection.socket.write('a')
		}, 1_000)
		try {
			await healthy()
			// Bounded: the server closes every one of them by itself (Bun's timeouts), within a minute.
			const deadline = Date.now() + 60_000
			while (closedCount < slow.length && Date.now() < deadline) {
				await healthy()
				await Bun.sleep(1_000)
			}
		} finally {
			clearInterval(trickle)
		}
		expect(closedCount).toBe(slow.length)
		const listed = await fetch(`${running.url}/api/tasks`, { headers: { authorization: `Bearer ${token}` } })
		expect(await listed.json()).toEqual([])
		await healthy()
	}, 90_000)

	test('a body over 64 KiB announced by Content-Length is refused with 413 at once, before it is sent', async () => {
		const token = await sign({ sub: newUser() })
		const connection = await rawConnection(`${post(token, 'Content-Length: 100000000')}{"title":"`)
		expect(await receivedBy(connection, '\r\n\r\n')).toStartWith('HTTP/1.1 413')
		expect(connection.received()).toContain('"error_code":"PAYLOAD_TOO_LARGE"')
		connection.socket.destroy()
		await healthy()
	})

	test('a body of exactly 64 KiB, announced by Content-Length and sent in pieces, is read whole', async () => {
		const token = await sign({ sub: newUser() })
		const title = 'Sent in pieces'
		const body = JSON.stringify({ title })
		const padded = `${body.slice(0, -1)}${' '.repeat(64 * 1024 - Buffer.byteLength(body))}}`
		expect(Buffer.byteLength(padded)).toBe(64 * 1024)
		const connection = await rawConnection(post(token, `Content-Length: ${64 * 1024}`))
		for (let at = 0; at < padded.length; at += 10_000) {
			connection.socket.write(padded.slice(at, at + 10_000))
			await Bun.sleep(20)
		}
		expect(await receivedBy(connection, '"title"')).toStartWith('HTTP/1.1 201')
		expect(connection.received()).toContain(`"title":"${title}"`)
		connection.socket.destroy()
		await healthy()
	})

	test('a request head up to 64 KiB reaches the app: a 60,000-character token gets its JSON 401, not a bare 431', async () => {
		await expectTheAppToAnswerA60kToken(running.url)
	})

	test('under `bun run start` too, a request head up to 64 KiB reaches the app', async () => {
		const start = startScript(`cd '${ROOT}'`, `exec '${process.execPath}' run start`)
		// Settings of its own: on PGlite the executable above holds its DATA_DIR.
		const script = await startBinary({ binary: start, cwd: temporaryFolder(), env: await database!.settings() })
		await expectTheAppToAnswerA60kToken(script.url)
		expect(await script.stop('SIGTERM')).toBe(0)
	})

	test('huge headers, a huge URL, garbage bytes and unknown methods are refused by the HTTP layer; the server stays up', async () => {
		const replies = await Promise.all([
			rawExchange(running.url, { method: 'GET', path: '/health', headers: { 'x-big': 'a'.repeat(100_000) } }),
			rawExchange(running.url, { method: 'GET', path: `/api/tasks?q=${'a'.repeat(100_000)}`, headers: {} }),
			rawExchange(running.url, {
				method: 'GET',
				path: '/health',
				headers: Object.fromEntries(Array.from({ length: 500 }, (_, n) => [`x-h${n}`, 'v'.repeat(100)]))
			}),
			rawExchange(running.url, { method: 'FOO', path: '/api/tasks', headers: {} }),
			rawExchange(running.url, { method: 'get', path: '/health', headers: {} })
		])
		// Refused (a 4xx) or hung up on (no status), never a 5xx, never served.
		for (const reply of replies) expect(reply.status === 0 || (reply.status >= 400 && reply.status < 500)).toBe(true)
		const garbage = await rawConnection('\x16\x03\x01\x02\x00 not http at all\r\n\r\n')
		await garbage.closed
		expect(garbage.received()).not.toMatch(/^HTTP\/1\.1 5/)
		await healthy()
	})

	test('a thousand idle connections at once do not stop it from serving', async () => {
		const idle = await Promise.all(Array.from({ length: 1_000 }, () => rawConnection('')))
		try {
			await healthy()
			const replies = await Promise.all(Array.from({ length: 50 }, () => fetch(`${running.url}/health`)))
			expect(replies.map((r) => r.status)).toEqual(Array(50).fill(200))
		} finally {
			for (const connection of idle) connection.socket.destroy()
		}
		await healthy()
	})
})

/** What jsonLog writes to stdout for these fields: the lines logged before are flushed first. */
async function writtenBy(fields: Record<string, unknown>): Promise<string> {
	await flushLog(0)
	const written: string[] = []
	const write = process.stdout.write
	process.stdout.write = ((text: string) => written.push(text) > 0) as typeof process.stdout.write
	try {
		jsonLog(fields)
		await flushLog(0)
	} finally {
		process.stdout.write = write
	}
	return written.join('')
}

describe('Running it: logs and headers', () => {
	test('the JSON log has one line per request with request_id, method, route, status, ms, user_id, and never a token or a secret', async () => {
		const user = newUser()
		const token = await sign({ sub: user })
		const expired = await sign({ sub: user }, { ttl: Math.floor(Date.now() / 1000) - 3600 })
		const forged = await sign({ sub: user }, { secret: 'another-secret-that-is-also-long-enough' })
		const tokens = [token, expired, forged]
		const sends: [string, string, Record<string, string>, string?][] = []
		for (const sent of tokens) {
			sends.push(['GET', '/api/tasks', { authorization: `Bearer ${sent}` }])
			sends.push(['GET', `/api/tasks?access_token=${sent}&q=${sent}`, { authorization: `Bearer ${token}` }])
			sends.push([
				'POST',
				'/api/tasks',
				{ authorization: `Bearer ${token}` },
				JSON.stringify({ title: sent.slice(-200), token: sent })
			])
			sends.push(['POST', '/api/tasks', { authorization: `Bearer ${token}` }, `{"not json ${sent}`])
			sends.push([
				'GET',
				`/api/tasks/${sent}`,
				{ authorization: `Bearer ${sent}`, cookie: `better-auth.session_data=${sent}` }
			])
			sends.push(['GET', '/health', { 'x-request-id': sent.slice(0, 100), authorization: sent }])
		}
		for (const [method, path, headers, body] of sends) {
			const response = await fetch(`${running.url}${path}`, {
				method,
				headers: { 'content-type': 'application/json', ...headers },
				body
			})
			expect(response.status).toBeLessThan(500)
			await response.text()
		}
		await Bun.sleep(200)
		const output = running.output()
		const secrets = [SECRET, ...tokens, ...tokens.map((t) => t.split('.')[2] as string)]
		if (settings.DATABASE_URL) secrets.push(new URL(settings.DATABASE_URL).password || 'no-password')
		for (const secret of secrets.filter(Boolean)) expect(output).not.toContain(secret)
		// The one part of a token that may be logged is the user id it names.
		const requests = linesOf(output).filter((line) => line.method !== undefined)
		expect(requests.length).toBeGreaterThanOrEqual(sends.length)
		for (const line of requests)
			expect(Object.keys(line)).toEqual(
				expect.arrayContaining(['time', 'level', 'request_id', 'method', 'route', 'status', 'ms'])
			)
		expect(requests.filter((line) => line.user_id === user).length).toBeGreaterThanOrEqual(tokens.length * 3)
	})

	test("a request's line names its route's pattern, never its path or query, and no route where none answered", async () => {
		const token = await sign({ sub: newUser() })
		const sends: [string, string, string | undefined][] = [
			['GET', '/api/tasks?q=private-search&completed=false', '/api/tasks'],
			['GET', '/api/tasks/918273645', '/api/tasks/:id'],
			['PATCH', '/api/tasks/918273645/complete', '/api/tasks/:id/complete'],
			['GET', '/private-path/918273645', undefined],
			['PUT', '/api/tasks', undefined]
		]
		for (const [n, [method, path]] of sends.entries()) {
			const response = await fetch(`${running.url}${path}`, {
				method,
				headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'x-request-id': `route-${n}` },
				body: method === 'GET' ? undefined : '{"completed":true}'
			})
			expect(response.status).toBeLessThan(500)
			await response.text()
		}
		await Bun.sleep(200)
		const lines = linesOf(running.output())
		for (const [n, [method, path, route]] of sends.entries()) {
			const line = lines.find((logged) => logged.request_id === `route-${n}`)
			expect({ method, path, logged: line !== undefined, route: line?.route }).toEqual({ method, path, logged: true, route })
			expect(JSON.stringify(line)).not.toMatch(/private|918273645/)
		}
	})

	test('a token or the values of a failed query inside an error still never reach a log line', async () => {
		const token = await sign({ sub: newUser() })
		const error = new Error(`Failed query: insert into "tasks" values ($1, $2)\nparams: ${token},private title`)
		const written = await writtenBy({ level: 'error', error: String(error), stack: error.stack, header: `Bearer ${token}` })
		const line = JSON.parse(written) as { error: string; header: string }
		expect(written).not.toContain(token.split('.')[2] as string)
		expect(written).not.toContain('private title')
		expect(line.error).toContain('Failed query: insert into "tasks"')
		expect(line.header).toBe('Bearer [token]')
	})

	test('the values of a failed query are masked in a line that holds no token', async () => {
		const error = new Error('Failed query: update "tasks" set "title" = $1\nparams: private title,42')
		const written = await writtenBy({ level: 'error', error: String(error) })
		expect(written).not.toContain('private title')
		expect((JSON.parse(written) as { error: string }).error).toContain('params: [redacted]')
	})

	test('a failed query whose values hold line breaks: all of them masked, and the stack keeps its frames', async () => {
		const { writes: db } = await testDatabase()
		const failure = await db.execute(sql`select ${'private title\nprivate description\n    at a made-up frame'}::int`).catch((e: unknown) => e)
		expect(failure).toBeInstanceOf(Error)
		const written = await writtenBy({ level: 'error', ...errorFields(failure) })
		expect(written).not.toContain('private')
		expect(written).not.toContain('made-up')
		const line = JSON.parse(written) as { error: string; stack: string }
		expect(line.error).toContain('Failed query: select $1::int\nparams: [redacted]')
		expect(line.stack).toStartWith('    at ')
	})

	test('every response carries the security headers and X-Request-Id: success, each error, preflight, docs', async () => {
		const token = await sign({ sub: newUser() })
		const auth = { authorization: `Bearer ${token}`, 'content-type': 'application/json' }
		const reply = await fetch(`${running.url}/api/tasks`, { method: 'POST', headers: auth, body: '{"title":"h"}' })
		const created = taskOf(await replyOf(reply))
		const requests: [string, string, Record<string, string>, string?][] = [
			['GET', '/health', {}],
			['GET', '/ready', {}],
			['GET', '/docs', {}],
			['GET', '/docs/json', {}],
			['GET', '/api/tasks', auth],
			['POST', '/api/tasks', auth, '{"title":"x"}'],
			['DELETE', `/api/tasks/${created.id}`, auth],
			['GET', '/api/tasks', {}],
			['GET', '/api/tasks/0', auth],
			['GET', '/nowhere', {}],
			['PATCH', '/api/tasks', auth],
			['POST', '/api/tasks', auth, 'x'.repeat(70_000)],
			['POST', '/api/tasks', auth, '{"title":5}'],
			['HEAD', '/health', {}],
			['OPTIONS', '/api/tasks', { origin: ORIGIN, 'access-control-request-method': 'POST' }],
			['OPTIONS', '/api/tasks', { origin: 'https://evil.example', 'access-control-request-method': 'POST' }]
		]
		for (const [method, path, headers, body] of requests) {
			const response = await fetch(`${running.url}${path}`, { method, headers, body })
			await response.arrayBuffer()
			const seen = {
				request: `${method} ${path} -> ${response.status}`,
				nosniff: response.headers.get('x-content-type-options'),
				frame: response.headers.get('x-frame-options'),
				referrer: response.headers.get('referrer-policy'),
				id: Boolean(response.headers.get('x-request-id'))
			}
			expect(seen).toEqual({
				request: seen.request,
				nosniff: 'nosniff',
				frame: 'DENY',
				referrer: 'no-referrer',
				id: true
			})
		}
	})
})
