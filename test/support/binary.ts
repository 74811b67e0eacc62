import { type Subprocess, spawn, spawnSync } from 'bun'
import { copyFileSync, cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { databaseUrl, SECRET } from './app'

export const ROOT = join(import.meta.dir, '..', '..')
export const BINARY = join(ROOT, 'dist', 'todo-api')

/** A test timeout for tests that start binaries: a fresh PGlite folder takes 3-5 s, more on a busy machine. */
export const SLOW = 60_000

let built: Promise<void> | undefined

/** Compiles dist/todo-api once per test run, as `bun run build` does. */
export function buildBinary(): Promise<void> {
	built ??= (async () => {
		const build = spawn(['bun', 'run', 'build'], { cwd: ROOT, stdout: 'pipe', stderr: 'pipe' })
		if ((await build.exited) !== 0) throw new Error(`build failed: ${await new Response(build.stderr).text()}`)
		if (!existsSync(BINARY)) throw new Error('build wrote no dist/todo-api')
	})()
	return built
}

const children = new Set<Subprocess>()

// Every process a test starts carries this, and so does whatever it spawns in turn (the server's
// workers inherit its environment), so leftovers are found even when their parent is gone.
const OWNER = 'TODO_API_TEST_OWNER'
const owner = `${OWNER}=${process.pid}`

function ownedProcesses(): number[] {
	const found: number[] = []
	for (const entry of readdirSync('/proc')) {
		if (!/^\d+$/.test(entry)) continue
		try {
			if (readFileSync(`/proc/${entry}/environ`, 'utf8').split('\0').includes(owner)) found.push(Number(entry))
		} catch {
			// Gone meanwhile, or not ours to read.
		}
	}
	return found
}

/** Kills whatever a failed test left running, the server's own workers included. */
export function killLeftovers(): void {
	for (const child of children) child.kill('SIGKILL')
	if (process.platform === 'linux')
		for (const pid of ownedProcesses())
			try {
				process.kill(pid, 'SIGKILL')
			} catch {
				// Exited meanwhile.
			}
}

let root: string | undefined

// bun test runs no exit hooks, and the PGlite template outlives each test file, so a shell removes
// this process's folders once the process is gone. It runs in the background of a shell that exits
// at once, so it is nobody's child: bun test, which kills a timed-out test's children, cannot reach it.
function temporaryRoot(): string {
	if (!root) {
		root = mkdtempSync(join(tmpdir(), 'todo-bin-'))
		const reaper = '(while kill -0 "$0" 2>/dev/null; do sleep 1; done; rm -rf "$1") >/dev/null 2>&1 &'
		spawnSync(['sh', '-c', reaper, String(process.pid), root])
	}
	return root
}

/** A new empty folder under the OS temp dir, removed when the test process ends. */
export function temporaryFolder(prefix = 'dir-'): string {
	return mkdtempSync(join(temporaryRoot(), prefix))
}

/** A shell script in a new folder, to start in the binary's place: it runs `lines`, which end in an exec. */
export function startScript(...lines: string[]): string {
	const script = join(temporaryFolder('script-'), 'start')
	writeFileSync(script, `#!/bin/sh\n${lines.join('\n')}\n`, { mode: 0o755 })
	return script
}

/** Copies the built binary, alone, into a new empty folder and returns its path there. */
export function copyBinaryAlone(): string {
	const copy = join(temporaryFolder('alone-'), 'todo-api')
	copyFileSync(BINARY, copy)
	return copy
}

type Env = Record<string, string | undefined>

export const LISTENING = /"msg":"listening","url":"(http:\/\/[^"]+?)\/?"/
/** The line a worker logs once it listens, as the primary logs LISTENING. */
export const WORKER_LISTENING = /"msg":"worker listening","url":"(http:\/\/[^"]+?)\/?"/

function settingsOf(env: Env): Record<string, string> {
	// Only these settings reach the child: nothing leaks in from the environment of the test run.
	const settings: Record<string, string> = {}
	const defaults = { PATH: process.env.PATH, PORT: '0', HOST: '127.0.0.1', [OWNER]: String(process.pid) }
	for (const [name, value] of Object.entries({ ...defaults, ...env }))
		if (value !== undefined) settings[name] = value
	return settings
}

function own<T extends Subprocess>(child: T): T {
	children.add(child)
	void child.exited.then(() => children.delete(child))
	return child
}

/** Starts the binary with its stdout on the descriptor `stdout`, which the test reads, or not. */
export function launchWritingTo(stdout: number, { binary = BINARY, cwd, env }: { binary?: string; cwd: string; env: Env }) {
	return own(spawn([binary], { cwd, env: settingsOf(env), stdin: 'ignore', stdout, stderr: 'inherit' }))
}

function launch(binary: string, args: string[], cwd: string, env: Env, onStdout?: (stdout: string) => void) {
	const child = own(spawn([binary, ...args], { cwd, env: settingsOf(env), stdin: 'ignore', stdout: 'pipe', stderr: 'pipe' }))
	const printed = { stdout: '', stderr: '', all: '' }
	const drain = async (stream: ReadableStream<Uint8Array>, into: 'stdout' | 'stderr') => {
		const decoder = new TextDecoder()
		for await (const chunk of stream) {
			const text = decoder.decode(chunk, { stream: true })
			printed[into] += text
			printed.all += text
			if (into === 'stdout') onStdout?.(printed.stdout)
		}
	}
	// Output ends when every writer is gone: a worker the server orphaned keeps the pipes open.
	const both = Promise.all([drain(child.stdout, 'stdout'), drain(child.stderr, 'stderr')])
	const drained = async () => {
		await child.exited
		await Promise.race([both, Bun.sleep(1_000)])
	}
	return { child, printed, drained }
}

export interface Running {
	url: string
	process: Subprocess<'ignore', 'pipe', 'pipe'>
	/** Everything the process printed so far. */
	output(): string
	stdout(): string
	stderr(): string
	/** Sends the signal and resolves with the exit code (128 + n when the signal killed it) once
	 * what it printed has been read. */
	stop(signal?: NodeJS.Signals): Promise<number>
}

/**
 * Starts the binary (PORT=0 unless given) and resolves once it logs that it listens (the line
 * `listening` matches, the primary's unless given), with the URL it listens on.
 */
export async function startBinary({
	binary = BINARY,
	cwd,
	env,
	timeoutMs = 20_000,
	listening = LISTENING
}: { binary?: string; cwd: string; env: Env; timeoutMs?: number; listening?: RegExp }): Promise<Running> {
	const { child, printed, drained } = launch(binary, [], cwd, env)
	const running: Running = {
		url: '',
		process: child,
		output: () => printed.all,
		stdout: () => printed.stdout,
		stderr: () => printed.stderr,
		async stop(signal = 'SIGTERM') {
			child.kill(signal)
			const code = await child.exited
			await drained()
			return code
		}
	}
	const deadline = Date.now() + timeoutMs
	while (Date.now() < deadline) {
		const match = listening.exec(printed.stdout)
		if (match?.[1]) {
			running.url = match[1].replace('0.0.0.0', '127.0.0.1')
			return running
		}
		if (child.exitCode !== null) throw new Error(`todo-api exited with ${child.exitCode}: ${printed.all}`)
		await Bun.sleep(20)
	}
	child.kill('SIGKILL')
	throw new Error(`todo-api did not listen within ${timeoutMs} ms: ${printed.all}`)
}

/**
 * Starts the binary and sends `signal` the instant it logs that it listens, as an orchestrator
 * may; resolves with the exit code and the output.
 */
export async function signalOnListening(
	signal: NodeJS.Signals,
	{ binary = BINARY, cwd, env }: { binary?: string; cwd: string; env: Env }
): Promise<{ code: number; output: string }> {
	let sent = false
	const { child, printed, drained } = launch(binary, [], cwd, env, (stdout) => {
		if (sent || !LISTENING.test(stdout)) return
		sent = true
		child.kill(signal)
	})
	const timer = setTimeout(() => child.kill('SIGKILL'), 20_000)
	const code = await child.exited
	clearTimeout(timer)
	await drained()
	return { code, output: printed.all }
}

export interface Finished {
	code: number
	stdout: string
	stderr: string
	/** It logged "listening" (and was then stopped): it did not refuse to start. */
	listened: boolean
}

/** Runs the binary with `args` until it exits; one that starts listening instead is stopped. */
export async function runBinary(
	args: string[],
	{ binary = BINARY, cwd, env, timeoutMs = 20_000 }: { binary?: string; cwd: string; env: Env; timeoutMs?: number }
): Promise<Finished> {
	const { child, printed, drained } = launch(binary, args, cwd, env)
	const deadline = Date.now() + timeoutMs
	let listened = false
	while (child.exitCode === null && child.signalCode === null && Date.now() < deadline) {
		if (!listened && LISTENING.test(printed.stdout)) {
			listened = true
			child.kill('SIGTERM')
		}
		await Bun.sleep(20)
	}
	if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
	const code = await child.exited
	await drained()
	return { code, stdout: printed.stdout, stderr: printed.stderr, listened }
}

// An address as /proc/net/tcp and tcp6 write it: 32-bit words, each in the host's byte order
// (little-endian here).
function addressOf(hex: string): string {
	const words = hex.match(/.{8}/g) ?? []
	const bytes = words.flatMap((word) => (word.match(/../g) ?? []).reverse().map((byte) => parseInt(byte, 16)))
	if (bytes.length === 4) return bytes.join('.')
	const groups = Array.from({ length: 8 }, (_, i) => ((bytes[2 * i] ?? 0) * 256 + (bytes[2 * i + 1] ?? 0)).toString(16))
	return new URL(`http://[${groups.join(':')}]`).hostname.slice(1, -1)
}

/** A socket listening on a port: the kernel's inode for it, and the address it is bound to. */
export interface Listener {
	inode: string
	address: string
}

/** The sockets listening on `port` (IPv4 and IPv6, from /proc/net), and which of them each process holds. */
export function listenersOn(port: number, pids: number[]): Map<number, Listener[]> {
	const hex = port.toString(16).toUpperCase().padStart(4, '0')
	const listening = new Map<string, string>()
	for (const table of ['/proc/net/tcp', '/proc/net/tcp6'])
		for (const line of readFileSync(table, 'utf8').split('\n').slice(1)) {
			const cols = line.trim().split(/\s+/)
			const [address, at] = cols[1]?.split(':') ?? []
			if (address && at === hex && cols[3] === '0A') listening.set(cols[9] ?? '', addressOf(address))
		}
	const held = new Map<number, Listener[]>()
	for (const pid of pids) {
		const sockets: Listener[] = []
		for (const fd of readdirSync(`/proc/${pid}/fd`)) {
			let inode: string | undefined
			try {
				inode = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))?.[1]
			} catch {
				// Closed meanwhile.
			}
			const address = inode === undefined ? undefined : listening.get(inode)
			if (inode !== undefined && address !== undefined) sockets.push({ inode, address })
		}
		held.set(pid, sockets)
	}
	return held
}

let template: Promise<string> | undefined

/**
 * A DATA_DIR holding a migrated PGlite database, copied from one made once per test process:
 * a fresh folder takes seconds to initialise, a copy of a closed one reopens in under one.
 */
export async function initialisedDataDir(): Promise<string> {
	template ??= (async () => {
		const dir = temporaryFolder('template-')
		const first = await startBinary({ cwd: dir, env: { BETTER_AUTH_SECRET: SECRET, DATA_DIR: join(dir, 'data') } })
		const ready = await fetch(`${first.url}/ready`)
		if (ready.status !== 200) throw new Error(`the template todo-api is not ready: ${ready.status}`)
		const code = await first.stop('SIGTERM')
		if (code !== 0) throw new Error(`the template todo-api exited with ${code}: ${first.output()}`)
		return join(dir, 'data')
	})()
	const copy = join(temporaryFolder('data-'), 'data')
	cpSync(await template, copy, { recursive: true })
	return copy
}

export interface BinaryDatabase {
	name: 'PGlite' | 'Postgres'
	/** The settings of a binary on this database, with BETTER_AUTH_SECRET; on PGlite a DATA_DIR of its own. */
	settings(): Promise<Env>
}

/** PGlite always; Postgres too when the run has TEST_DATABASE_URL. */
export const binaryDatabases: BinaryDatabase[] = [
	{ name: 'PGlite', settings: async () => ({ BETTER_AUTH_SECRET: SECRET, DATA_DIR: await initialisedDataDir() }) },
	...(databaseUrl
		? [{ name: 'Postgres' as const, settings: async () => ({ BETTER_AUTH_SECRET: SECRET, DATABASE_URL: databaseUrl }) }]
		: [])
]

/** Lets call() and asUser() of ./app talk to a running binary over HTTP instead of to an app in process. */
export function over(url: string) {
	return {
		handle(request: Request): Promise<Response> {
			const { pathname, search } = new URL(request.url)
			return fetch(new Request(`${url}${pathname}${search}`, request))
		}
	}
}

/**
 * Sends a request's head and the first half of its JSON body over a raw socket, and holds the
 * rest back until finish(), so the request is surely in flight in between. Resolves with the status.
 */
export async function heldRequest(
	url: string,
	{ method, path, token, body }: { method: string; path: string; token: string; body: string }
): Promise<{ finish(): Promise<number | undefined> }> {
	const { hostname, port } = new URL(url)
	const socket = connect(Number(port), hostname)
	let received = ''
	socket.setEncoding('utf8')
	socket.on('data', (data: string) => {
		received += data
	})
	const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()))
	await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject))
	// A reset shows as no status at all; 'close' follows it.
	socket.on('error', () => {})
	const bytes = Buffer.from(body)
	const half = bytes.byteLength >> 1
	socket.write(
		`${method} ${path} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nAuthorization: Bearer ${token}\r\n` +
			`Content-Type: application/json\r\nContent-Length: ${bytes.byteLength}\r\nConnection: close\r\n\r\n`
	)
	socket.write(bytes.subarray(0, half))
	return {
		async finish() {
			socket.write(bytes.subarray(half))
			await closed
			const status = /^HTTP\/1\.1 (\d{3}) /.exec(received)?.[1]
			return status ? Number(status) : undefined
		}
	}
}

/** Whether /ready answers 200 within `ms`; each try that gets no answer within 10 s fails the wait. */
export async function readyWithin(running: Pick<Running, 'url'>, ms: number): Promise<boolean> {
	const deadline = Date.now() + ms
	while (Date.now() < deadline) {
		if ((await fetch(`${running.url}/ready`, { signal: AbortSignal.timeout(10_000) })).status === 200) return true
		await Bun.sleep(50)
	}
	return false
}

/** Resolves once the process has printed `text`; a process that exits first fails the wait. */
export async function printed(running: Running, text: string, timeoutMs = 10_000): Promise<void> {
	const deadline = Date.now() + timeoutMs
	while (!running.output().includes(text)) {
		if (Date.now() > deadline || running.process.exitCode !== null)
			throw new Error(`todo-api never printed ${text}: ${running.output()}`)
		await Bun.sleep(10)
	}
}
