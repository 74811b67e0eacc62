import { afterEach, describe, expect, test } from 'bun:test'
import { connect } from 'node:net'
import { errorOf, newUser, type Reply, replyOf, sign, taskOf, tasksOf } from '../support/app'
import { binaryDatabases, heldRequest, killLeftovers, printed, startBinary, temporaryFolder } from '../support/binary'
import { binaryCopy } from './processes'

const binary = await binaryCopy()
afterEach(killLeftovers)

// The bound for a graceful stop.
const EXIT_WITHIN_MS = 10_000

function refusesConnections(url: string): Promise<boolean> {
	const { hostname, port } = new URL(url)
	return new Promise((resolve) => {
		const socket = connect(Number(port), hostname)
		socket.once('connect', () => {
			// Accepted by a listener still open: it must at least not serve a request.
			socket.write(`GET /health HTTP/1.1\r\nHost: ${hostname}\r\nConnection: close\r\n\r\n`)
			let received = ''
			socket.on('data', (data) => {
				received += String(data)
			})
			socket.once('close', () => resolve(!received.startsWith('HTTP/1.1 200')))
		})
		socket.once('error', () => resolve(true))
	})
}

describe('Running it: SIGTERM under load', () => {
	for (const database of binaryDatabases)
		test(`stops taking connections, ends with 0 within 10 s, and every acknowledged write is there after a restart (${database.name})`, async () => {
			const settings = await database.settings()
			const cwd = temporaryFolder()
			const running = await startBinary({ binary, cwd, env: settings })
			const token = await sign({ sub: newUser() })
			const acknowledged: number[] = []
			const otherAnswers: Reply[] = []
			let stopped = false
			const writers = Array.from({ length: 8 }, async (_, writer) => {
				for (let n = 0; !stopped && acknowledged.length < 600; n++) {
					const reply = await fetch(`${running.url}/api/tasks`, {
						method: 'POST',
						headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
						body: JSON.stringify({ title: `writer ${writer} #${n}` })
					})
						.then(replyOf)
						.catch(() => undefined)
					// No answer (refused or cut off by the stop): nothing acknowledged.
					if (!reply) await Bun.sleep(10)
					else if (reply.status === 201) acknowledged.push(taskOf(reply).id)
					else otherAnswers.push(reply)
				}
			})
			while (acknowledged.length < 50) await Bun.sleep(10)
			// A request in flight keeps the stop draining while new connections are tried.
			const held = await heldRequest(running.url, {
				method: 'POST',
				path: '/api/tasks',
				token,
				body: '{"title":"held"}'
			})
			expect((await fetch(`${running.url}/health`)).status).toBe(200)

			const exited = running.stop('SIGTERM')
			await printed(running, '"msg":"stopping"')
			await Bun.sleep(100)
			expect(await refusesConnections(running.url)).toBe(true)
			expect(await held.finish()).toBe(201)
			const code = await Promise.race([exited, Bun.sleep(EXIT_WITHIN_MS).then(() => 'still running after 10 s')])
			stopped = true
			await Promise.all(writers)
			expect(code).toBe(0)
			for (const reply of otherAnswers) expect(errorOf(reply).error_code).toBe('SERVICE_UNAVAILABLE')
			// Each answer has its log line, those sent while the database closed included.
			const logged = running.stdout().split('\n').filter((line) => /"method":"POST".*"status":201/.test(line))
			expect(logged.length).toBeGreaterThanOrEqual(acknowledged.length + 1)

			const again = await startBinary({ binary, cwd, env: settings })
			const listed = await fetch(`${again.url}/api/tasks?limit=1000`, { headers: { authorization: `Bearer ${token}` } })
			const tasks = tasksOf(await replyOf(listed))
			const ids = new Set(tasks.map((task) => task.id))
			expect(acknowledged.filter((id) => !ids.has(id))).toEqual([])
			expect(tasks.map((task) => task.title)).toContain('held')
			expect(await again.stop('SIGTERM')).toBe(0)
		}, 60_000)

	test('a client that never finishes its body does not hold the stop: the database is closed and the exit is 0 within 10 s (PGlite)', async () => {
		const settings = await binaryDatabases[0]!.settings()
		const cwd = temporaryFolder()
		const running = await startBinary({ binary, cwd, env: settings })
		const token = await sign({ sub: newUser() })
		const created = await fetch(`${running.url}/api/tasks`, {
			method: 'POST',
			headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
			body: '{"title":"before the stuck client"}'
		})
		expect(created.status).toBe(201)
		const { port } = new URL(running.url)
		const stuck = connect(Number(port), '127.0.0.1')
		stuck.on('error', () => {})
		await new Promise((resolve) => stuck.once('connect', resolve))
		stuck.write(
			`POST /api/tasks HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${token}\r\n` +
				'Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"ti'
		)
		expect((await fetch(`${running.url}/health`)).status).toBe(200)

		const exited = running.stop('SIGTERM')
		const code = await Promise.race([exited, Bun.sleep(EXIT_WITHIN_MS).then(() => 'still running after 10 s')])
		stuck.destroy()
		expect(code).toBe(0)
		// Closed cleanly: the next start finds the task, and the folder is free at once.
		const again = await startBinary({ binary, cwd, env: settings })
		const listed = await fetch(`${again.url}/api/tasks`, { headers: { authorization: `Bearer ${token}` } })
		expect(tasksOf(await replyOf(listed)).map((task) => task.title)).toEqual(['before the stuck client'])
		expect(await again.stop('SIGTERM')).toBe(0)
	}, 60_000)
})
