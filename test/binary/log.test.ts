import { afterEach, describe, expect, test } from 'bun:test'
import { spawnSync } from 'bun'
import { closeSync, constants, openSync, readSync } from 'node:fs'
import { join } from 'node:path'
import { newUser, sign } from '../support/app'
import { binaryDatabases, buildBinary, killLeftovers, launchWritingTo, LISTENING, SLOW, temporaryFolder } from '../support/binary'

await buildBinary()
afterEach(killLeftovers)

// The pipe from the API's stdout to its log collector, whose reading end the test holds.
function logPipe() {
	const path = join(temporaryFolder('log-'), 'stdout')
	spawnSync(['mkfifo', path])
	const reader = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK)
	const writer = openSync(path, constants.O_WRONLY)
	const chunk = Buffer.alloc(1 << 16)
	let text = ''
	return {
		writer,
		/** Everything read so far, after reading what the pipe holds now. */
		read(): string {
			for (;;) {
				let size: number
				try {
					size = readSync(reader, chunk)
				} catch {
					return text // EAGAIN: nothing more for now
				}
				if (size === 0) return text
				text += chunk.toString('utf8', 0, size)
			}
		},
		close: () => closeSync(reader)
	}
}

async function startLogging(pipe: ReturnType<typeof logPipe>) {
	const server = launchWritingTo(pipe.writer, { cwd: temporaryFolder(), env: await binaryDatabases[0]!.settings() })
	closeSync(pipe.writer)
	for (const deadline = Date.now() + 20_000; Date.now() < deadline; await Bun.sleep(20)) {
		const url = LISTENING.exec(pipe.read())?.[1]
		if (url) return { server, url }
	}
	throw new Error(`todo-api did not log "listening": ${pipe.read()}`)
}

describe('Running it: the log on stdout, a pipe to a collector', () => {
	test('a collector that goes away ends the log, not the API', async () => {
		const pipe = logPipe()
		const { server, url } = await startLogging(pipe)
		pipe.close()
		for (let n = 0; n < 20; n++) expect((await fetch(`${url}/health`)).status).toBe(200)
		const created = await fetch(`${url}/api/tasks`, {
			method: 'POST',
			headers: { authorization: `Bearer ${await sign({ sub: newUser() })}`, 'content-type': 'application/json' },
			body: '{"title":"logged nowhere"}'
		})
		expect(created.status).toBe(201)
		server.kill('SIGTERM')
		expect(await server.exited).toBe(0)
	}, SLOW)

	test('a collector that stalls: past a bounded backlog lines are dropped and counted, and the count is logged once it reads again', async () => {
		const pipe = logPipe()
		const { server, url } = await startLogging(pipe)
		// Long request ids make lines of about 330 bytes: 20,000 of them are about 6.5 MB, more than
		// the 4 MiB kept past a full pipe.
		const requests = 20_000
		const clients = 32
		await Promise.all(
			Array.from({ length: clients }, async (_, client) => {
				for (let n = client; n < requests; n += clients) {
					const answer = await fetch(`${url}/health`, { headers: { 'x-request-id': `${'r'.repeat(120)}-${n}` } })
					expect(answer.status).toBe(200)
				}
			})
		)
		const droppedLine = /"msg":"log lines dropped[^\n]*"dropped":(\d+)/
		for (const deadline = Date.now() + 20_000; !droppedLine.test(pipe.read()) && Date.now() < deadline; ) await Bun.sleep(20)
		const text = pipe.read()
		const dropped = Number(droppedLine.exec(text)?.[1] ?? 0)
		const logged = text.split('\n').filter((line) => line.includes('"route":"/health"')).length
		expect(dropped).toBeGreaterThan(0)
		expect(logged + dropped).toBe(requests)
		server.kill('SIGTERM')
		expect(await server.exited).toBe(0)
		pipe.close()
	}, SLOW)
})
