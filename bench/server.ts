// Starts the compiled binary the way an operator would, or the bare stack (bench/bare.ts) beside it,
// and watches their processes' memory and CPU.
import { type Subprocess, spawn } from 'bun'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Statement } from './statements'

export interface Server {
	url: string
	/** The processes started, each with the workers it spawns. */
	pids: number[]
	/** Milliseconds from spawn to the first 200 of GET /health, then of an authenticated GET /api/tasks. */
	firstHealthMs: number
	firstApiMs: number
	stop(): Promise<number>
}

/** A port that was free a moment ago (the binary then takes it; nothing else here races for it). */
export function freePort(): number {
	const probe = Bun.listen({ hostname: '127.0.0.1', port: 0, socket: { data() {} } })
	const { port } = probe
	probe.stop(true)
	return port
}

// Sockets listening on the port, one per process serving it (they share it through SO_REUSEPORT).
function listeners(port: number): number {
	const local = `:${port.toString(16).toUpperCase().padStart(4, '0')}`
	return ['/proc/net/tcp', '/proc/net/tcp6']
		.flatMap((table) => readFileSync(table, 'utf8').split('\n').slice(1))
		.filter((line) => {
			const [, address, , state] = line.trim().split(/\s+/)
			return address?.endsWith(local) && state === '0A'
		}).length
}

/**
 * Starts the binary, measures its first 200s, then waits until all its `processes` listen: the
 * kernel gives a new connection to one of the processes listening at that moment, so a load started
 * as soon as the first one answers would keep all its connections on that one, and the next run's
 * share of them would find the others never warmed up.
 */
export async function startServer(binary: string, env: Record<string, string>, token: string, processes: number): Promise<Server> {
	const port = freePort()
	const url = `http://127.0.0.1:${port}`
	const started = performance.now()
	// Request logs go to /dev/null: written, as in production, but not kept.
	const child: Subprocess<'ignore', 'ignore', 'pipe'> = spawn([binary], {
		env: { PATH: process.env.PATH ?? '', HOST: '127.0.0.1', PORT: String(port), ...env },
		stdin: 'ignore',
		stdout: 'ignore',
		stderr: 'pipe'
	})
	const stderr = new Response(child.stderr).text()
	const until = started + 30_000
	let firstHealthMs = 0
	while (performance.now() < until && child.exitCode === null) {
		try {
			if ((await fetch(`${url}/health`)).status === 200) {
				firstHealthMs = performance.now() - started
				break
			}
		} catch {
			await Bun.sleep(1)
		}
	}
	if (!firstHealthMs) {
		child.kill('SIGKILL')
		throw new Error(`todo-api did not answer: ${await stderr}`)
	}
	const api = await fetch(`${url}/api/tasks?limit=1`, { headers: { authorization: `Bearer ${token}` } })
	const firstApiMs = performance.now() - started
	if (api.status !== 200) throw new Error(`GET /api/tasks answered ${api.status}: ${await api.text()}`)
	while (listeners(port) < processes) {
		if (performance.now() > until || child.exitCode !== null) {
			child.kill('SIGKILL')
			throw new Error(`${listeners(port)} of ${processes} todo-api processes listen: ${await stderr}`)
		}
		await Bun.sleep(10)
	}
	return {
		url,
		pids: [child.pid],
		firstHealthMs,
		firstApiMs,
		async stop() {
			child.kill('SIGTERM')
			const code = await child.exited
			if (code !== 0) throw new Error(`todo-api exited with ${code} on SIGTERM: ${await stderr}`)
			return code
		}
	}
}

/** The scenarios bench/bare.ts serves. */
export const BARE_KINDS = ['list', 'get'] as const
export type BareKind = (typeof BARE_KINDS)[number]

/** Starts `processes` copies of bench/bare.ts on one port, answering `list` and `get` with these statements. */
export async function startBare(
	database: { DATABASE_URL: string } | { DATA_DIR: string },
	statements: Record<BareKind, Statement>,
	processes: number
): Promise<Pick<Server, 'url' | 'pids' | 'stop'>> {
	const port = freePort()
	const url = `http://127.0.0.1:${port}`
	const env = { PATH: process.env.PATH ?? '', ...database, PORT: String(port), BARE_STATEMENTS: JSON.stringify(statements) }
	const children = Array.from({ length: processes }, () =>
		spawn([process.execPath, join(import.meta.dir, 'bare.ts')], { env, stdin: 'ignore', stdout: 'pipe', stderr: 'inherit' })
	)
	const stop = async () => {
		for (const child of children) child.kill('SIGKILL')
		await Promise.all(children.map((child) => child.exited))
		return 0
	}
	// Every process must listen before the load starts, or the first one gets every connection.
	const listening = await Promise.race([
		Promise.all(children.map((child) => child.stdout.getReader().read())),
		Bun.sleep(10_000).then(() => undefined)
	])
	if (!listening || listening.some((line) => line.done)) {
		await stop()
		throw new Error('bench/bare.ts did not listen')
	}
	if ((await fetch(`${url}/api/tasks/1`)).status !== 200) {
		await stop()
		throw new Error('bench/bare.ts did not answer GET /api/tasks/1')
	}
	return { url, pids: children.map((child) => child.pid), stop }
}

// The fields of /proc/PID/stat after the command's name (which may hold spaces): [0] is the state,
// [1] the parent, [11] and [12] the user and system CPU time in clock ticks.
function statOf(pid: number | string): string[] | undefined {
	try {
		const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
		return stat.slice(stat.lastIndexOf(')') + 2).split(' ')
	} catch {
		return undefined
	}
}

function parentOf(pid: string): number | undefined {
	const parent = statOf(pid)?.[1]
	return parent === undefined ? undefined : Number(parent)
}

// A field in kB of /proc/PID/<file>; 0 once the process is gone.
function kiB(pid: number, file: string, field: string): number {
	try {
		return Number(new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(readFileSync(`/proc/${pid}/${file}`, 'utf8'))?.[1] ?? 0)
	} catch {
		return 0
	}
}

/** The processes and all their descendants (the workers they spawned). */
function processTree(roots: number[]): number[] {
	const children = new Map<number, number[]>()
	for (const entry of readdirSync('/proc')) {
		if (!/^\d+$/.test(entry)) continue
		const parent = parentOf(entry)
		if (parent !== undefined) children.set(parent, [...(children.get(parent) ?? []), Number(entry)])
	}
	const tree = [...roots]
	for (let i = 0; i < tree.length; i++) tree.push(...(children.get(tree[i] ?? -1) ?? []))
	return tree
}

/** RSS in MiB of each process of the tree. */
export const treeRss = (roots: number[]): number[] => processTree(roots).map((pid) => kiB(pid, 'status', 'VmRSS') / 1024)

/**
 * The tree's memory in MiB, as the sum of its processes' PSS: a page they share (the binary's) is
 * split between them, so the sum counts it once, where a sum of RSS counts it in every process.
 */
export const treePss = (roots: number[]): number =>
	processTree(roots).reduce((sum, pid) => sum + kiB(pid, 'smaps_rollup', 'Pss') / 1024, 0)

// Linux reports CPU time in USER_HZ ticks, 100 a second on every architecture it runs Bun on.
const TICKS_PER_SECOND = 100

/** The CPU time, user and system, a process has spent so far, in µs; 0 once it is gone. */
export function cpuUs(pid: number): number {
	const stat = statOf(pid)
	return (Number(stat?.[11] ?? 0) + Number(stat?.[12] ?? 0)) * (1e6 / TICKS_PER_SECOND)
}

/** The same for the processes and all their descendants. */
export const treeCpuUs = (roots: number[]): number => processTree(roots).reduce((sum, pid) => sum + cpuUs(pid), 0)

/** Samples the tree's total RSS every 100 ms until stopped; resolves with the peak in MiB. */
export function watchPeakRss(roots: number[]): () => number {
	let peak = 0
	const sample = () => {
		peak = Math.max(
			peak,
			treeRss(roots).reduce((sum, mib) => sum + mib, 0)
		)
	}
	sample()
	const timer = setInterval(sample, 100)
	return () => {
		clearInterval(timer)
		sample()
		return peak
	}
}
