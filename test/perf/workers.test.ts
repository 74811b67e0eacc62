import { afterEach, describe, expect, test } from 'bun:test'
import { accessSync, constants, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { connect } from 'node:net'
import { join } from 'node:path'
import { asUser, databaseUrl, SECRET } from '../support/app'
import {
	BINARY,
	buildBinary,
	initialisedDataDir,
	killLeftovers,
	listenersOn,
	over,
	runBinary,
	SLOW,
	startBinary,
	startScript,
	temporaryFolder
} from '../support/binary'
import { closeTcpProxies, startTcpProxy } from '../support/tcp-proxy'
import { restartDelay } from '../../src/workers'

await buildBinary()
afterEach(() => {
	killLeftovers()
	closeTcpProxies()
})

function childrenOf(pid: number): number[] {
	const found: number[] = []
	for (const entry of readdirSync('/proc')) {
		if (!/^\d+$/.test(entry)) continue
		try {
			const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
			if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) found.push(Number(entry))
		} catch {
			// The process ended while we looked.
		}
	}
	return found
}

const alive = (pid: number) => {
	try {
		process.kill(pid, 0)
		return true
	} catch {
		return false
	}
}

async function until(check: () => boolean, what: string, timeoutMs = 15_000) {
	const deadline = Date.now() + timeoutMs
	while (!check()) {
		if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`)
		await Bun.sleep(50)
	}
}

const cores = availableParallelism()

/** A keep-alive connection of the test's own (fetch would hide which connection a request takes). */
async function keptAlive(url: string) {
	const { hostname, port } = new URL(url)
	const socket = connect(Number(port), hostname)
	await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject))
	socket.setEncoding('utf8')
	let received = ''
	let closed = false
	let wake = () => {}
	socket.on('data', (data: string) => {
		received += data
		wake()
	})
	socket.on('close', () => {
		closed = true
		wake()
	})
	// A reset shows as a close, with no answer.
	socket.on('error', () => {})
	return {
		get closed() {
			return closed
		},
		/** GET /health on this connection: its status, and whether the answer closes the connection. */
		async health(): Promise<{ status: number; closes: boolean }> {
			socket.write(`GET /health HTTP/1.1\r\nHost: ${hostname}:${port}\r\n\r\n`)
			for (;;) {
				const end = received.indexOf('\r\n\r\n')
				const head = received.slice(0, end)
				const length = Number(/^content-length: *(\d+)/im.exec(head)?.[1] ?? 0)
				if (end >= 0 && received.length >= end + 4 + length) {
					received = received.slice(end + 4 + length)
					return { status: Number(head.split(' ')[1]), closes: /^connection: *close\r?$/im.test(head) }
				}
				if (closed) throw new Error('the connection closed before an answer')
				await new Promise<void>((resolve) => (wake = resolve))
			}
		},
		close: () => socket.destroy()
	}
}

// The default is Bun's availableParallelism, which counts a cgroup's CPU quota (`docker run
// --cpus`, a pod's CPU limit), not only the host's cores: each worker holds its own Postgres
// connections, which one per host core in a one-CPU container would multiply for nothing. It is
// seen in a real cgroup where the test runs as root with cgroup v1's cpu controller writable.
const CPU_CGROUPS = '/sys/fs/cgroup/cpu'
const cgroupsWritable = (() => {
	try {
		accessSync(CPU_CGROUPS, constants.W_OK)
		return true
	} catch {
		return false
	}
})()

describe('WORKERS: processes serving one port', () => {
	// An orchestrator stops it with SIGTERM, Ctrl-C in a terminal with SIGINT: the primary forwards either.
	for (const signal of ['SIGTERM', 'SIGINT'] as const)
		test.skipIf(!databaseUrl)(`on Postgres, WORKERS=3 is three processes, each with its own socket on the port; ${signal} to the primary stops all three, and it exits 0`, async () => {
			const env = { BETTER_AUTH_SECRET: SECRET, DATABASE_URL: databaseUrl, WORKERS: '3' }
			const running = await startBinary({ cwd: temporaryFolder(), env })
			const primary = running.process.pid
			await until(() => childrenOf(primary).length === 2, 'two workers run')
			const port = Number(new URL(running.url).port)
			const workers = childrenOf(primary)
			await until(() => [...listenersOn(port, [primary, ...workers]).values()].every((s) => s.length === 1), 'all listen')
			const sockets = [...listenersOn(port, [primary, ...workers]).values()].flat().map(({ inode }) => inode)
			expect(new Set(sockets).size).toBe(3)
			expect(running.stdout()).toContain('"workers":3')

			const user = await asUser(over(running.url))
			const created = await Promise.all(Array.from({ length: 30 }, (_, i) => user.post('/api/tasks', { title: `t${i}` })))
			expect(created.map((r) => r.status)).toEqual(Array(30).fill(201))
			const list = await user.get('/api/tasks')
			expect(list.headers.get('x-total-count')).toBe('30')

			expect(await running.stop(signal)).toBe(0)
			for (const pid of workers) expect(alive(pid)).toBe(false)
		}, SLOW)

	test.skipIf(!databaseUrl)('connections that came while the primary listened alone are closed after an answer once the workers listen, so that they spread', async () => {
		const proxy = await startTcpProxy(databaseUrl as string)
		// With the database away the primary listens, and starts no worker until it has migrated.
		proxy.cut()
		const env = { BETTER_AUTH_SECRET: SECRET, DATABASE_URL: proxy.url(databaseUrl as string), WORKERS: '2' }
		const running = await startBinary({ cwd: temporaryFolder(), env })
		const early = await Promise.all(Array.from({ length: 8 }, () => keptAlive(running.url)))
		for (const connection of early) expect(await connection.health()).toEqual({ status: 200, closes: false })

		proxy.restore()
		await until(() => running.stdout().includes('"msg":"worker listening"'), 'the worker listens')
		for (const connection of early) {
			let answer = await connection.health()
			for (let tries = 1; !answer.closes && tries < 100; tries++) {
				expect(answer.status).toBe(200)
				await Bun.sleep(50)
				answer = await connection.health()
			}
			expect(answer).toEqual({ status: 200, closes: true })
			await until(() => connection.closed, 'the server closes the connection')
		}

		const later = await Promise.all(Array.from({ length: 8 }, () => keptAlive(running.url)))
		for (const connection of later)
			for (let i = 0; i < 3; i++) expect(await connection.health()).toEqual({ status: 200, closes: false })
		for (const connection of later) connection.close()
		expect(await running.stop('SIGTERM')).toBe(0)
	}, SLOW)

	test.skipIf(!databaseUrl)('a second todo-api on the port the workers share is refused, as with one process', async () => {
		const env = { BETTER_AUTH_SECRET: SECRET, DATABASE_URL: databaseUrl, WORKERS: '2' }
		const running = await startBinary({ cwd: temporaryFolder(), env })
		const second = await runBinary([], { cwd: temporaryFolder(), env: { ...env, PORT: new URL(running.url).port } })
		expect([second.code, second.listened]).toEqual([1, false])
		expect(second.stderr).toContain('todo-api: cannot start: Failed to listen')
		expect((await asUser(over(running.url)).then((user) => user.get('/api/tasks'))).status).toBe(200)
		expect(await running.stop('SIGTERM')).toBe(0)
	}, SLOW)

	test.skipIf(!databaseUrl)('a worker that dies is replaced, later each time it dies again; one left without its primary stops by itself', async () => {
		const env = { BETTER_AUTH_SECRET: SECRET, DATABASE_URL: databaseUrl, WORKERS: '2' }
		const running = await startBinary({ cwd: temporaryFolder(), env })
		const primary = running.process.pid
		const listening = () => running.stdout().split('"msg":"worker listening"').length - 1
		const restartsIn = () => [...running.stdout().matchAll(/"msg":"worker died; restarting it".*?"in_ms":(\d+)/g)].map((m) => Number(m[1]))
		let worker: number | undefined
		for (const [death, wait] of [250, 500, 1000].entries()) {
			await until(() => listening() === death + 1, 'the worker listens')
			const [dying] = childrenOf(primary)
			process.kill(dying ?? 0, 'SIGKILL')
			await until(() => childrenOf(primary).some((pid) => pid !== dying), 'the worker is replaced')
			expect(restartsIn().at(-1)).toBe(wait)
			worker = childrenOf(primary)[0]
		}
		await until(() => listening() === 4, 'the last new worker listens')

		process.kill(primary, 'SIGKILL')
		await until(() => !alive(worker ?? 0), 'the orphaned worker stops')
	}, SLOW)

	test('a worker dying again and again waits twice as long each time, up to a minute', () => {
		expect(Array.from({ length: 10 }, (_, i) => restartDelay(i + 1))).toEqual([
			250, 500, 1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000
		])
	})

	test('on the embedded database WORKERS>1 is refused politely: one process, and the log says why', async () => {
		const env = { BETTER_AUTH_SECRET: SECRET, DATA_DIR: await initialisedDataDir(), WORKERS: '3' }
		const running = await startBinary({ cwd: temporaryFolder(), env })
		expect(running.stdout()).toContain('WORKERS=3 ignored')
		expect(running.stdout()).toContain('"workers":1')
		await Bun.sleep(500)
		expect(childrenOf(running.process.pid)).toEqual([])
		const user = await asUser(over(running.url))
		expect((await user.post('/api/tasks', { title: 'one process' })).status).toBe(201)
		expect(await running.stop('SIGTERM')).toBe(0)
	}, SLOW)

	for (const workers of ['0', 'many', '-1', '65'])
		test(`WORKERS=${workers} stops the start with one line on stderr`, async () => {
			const env = { BETTER_AUTH_SECRET: SECRET, DATA_DIR: temporaryFolder(), WORKERS: workers }
			const finished = await runBinary([], { cwd: temporaryFolder(), env })
			expect(finished.listened).toBe(false)
			expect(finished.code).not.toBe(0)
			expect(finished.stderr.trim().split('\n')).toEqual([`todo-api: WORKERS must be a whole number from 1 to 64, not "${workers}".`])
		}, SLOW)

	test.skipIf(!databaseUrl || !cgroupsWritable || cores < 2)('on Postgres and by default, a process allowed one CPU by its cgroup serves alone; one per core otherwise', async () => {
		const group = join(CPU_CGROUPS, `todo-api-test-${process.pid}`)
		mkdirSync(group)
		try {
			writeFileSync(join(group, 'cpu.cfs_quota_us'), readFileSync(join(group, 'cpu.cfs_period_us'), 'utf8').trim())
			const wrapper = startScript(`echo $$ > '${group}/cgroup.procs'`, `exec '${BINARY}' "$@"`)
			const env = { BETTER_AUTH_SECRET: SECRET, DATABASE_URL: databaseUrl }
			const limited = await startBinary({ binary: wrapper, cwd: temporaryFolder(), env })
			expect(limited.stdout()).toContain('"workers":1,')
			await Bun.sleep(500)
			expect(childrenOf(limited.process.pid)).toEqual([])
			expect(await limited.stop('SIGTERM')).toBe(0)

			const free = await startBinary({ cwd: temporaryFolder(), env })
			expect(free.stdout()).toContain(`"workers":${cores},`)
			expect(await free.stop('SIGTERM')).toBe(0)
		} finally {
			const members = () => readFileSync(join(group, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean)
			for (const pid of members()) process.kill(Number(pid), 'SIGKILL')
			await until(() => members().length === 0, 'the cgroup is empty')
			rmdirSync(group)
		}
	}, SLOW)
})
