import { type Subprocess, spawn } from 'bun'
import { availableParallelism } from 'node:os'
import type { Log } from './log'

/** Set on the processes the primary spawns: they serve, but neither migrate nor spawn. */
export const WORKER_ENV = 'TODO_API_WORKER'
/** The primary's pid, so a worker can tell at once whether its primary is still there. */
export const PRIMARY_ENV = 'TODO_API_PRIMARY'

// A worker that dies is restarted after FIRST_RESTART_MS, and one that keeps dying later each time:
// the wait doubles with each of its deaths in the last minute, up to a minute. A crash loop then
// costs little, and the worker comes back once its cause is gone.
const FIRST_RESTART_MS = 250
const LAST_RESTART_MS = 60_000

/** The wait before restarting a worker that has died `deaths` times in the last minute, this one included. */
export const restartDelay = (deaths: number): number => Math.min(FIRST_RESTART_MS * 2 ** (deaths - 1), LAST_RESTART_MS)

/**
 * How many processes serve the port: WORKERS, else one per core the process may use (Bun's count
 * honours a cgroup's CPU quota, as in a container). The embedded database belongs to exactly one
 * process, so without DATABASE_URL it is always 1.
 */
export function workerCount(workers: number | undefined, embedded: boolean, log: Log): number {
	if (!embedded) return workers ?? availableParallelism()
	if (workers !== undefined && workers !== 1)
		log({ level: 'warn', msg: `WORKERS=${workers} ignored: the embedded database (no DATABASE_URL) is served by one process` })
	return 1
}

/**
 * The same program again. The compiled binary is its own executable and applies its runtime flags
 * (`--compile-exec-argv`) at every start; under `bun` the runtime's flags (`bun --watch`) and the
 * script follow.
 */
export function ownCommand(): string[] {
	const compiled = Bun.main.startsWith('/$bunfs/')
	return [process.execPath, ...(compiled ? [] : [...process.execArgv, Bun.main]), ...Bun.argv.slice(2)]
}

/** What a worker tells its primary once it listens. */
const LISTENING = 'listening'

/** In a worker that listens: tells its primary, unless it is gone (followParent then stops the worker). */
export function tellListening(): void {
	if (process.connected) process.send?.(LISTENING)
}

/**
 * Runs `count` more copies of this program on `port` (they share it through reusePort), restarts
 * one that dies, and on stop() forwards the signal and resolves once all have exited. `listening`
 * resolves once each of the first `count` has listened.
 */
export function superviseWorkers(count: number, port: number, log: Log) {
	const running = new Set<Subprocess>()
	const deaths = new Map<number, number[]>()
	const listened = new Set<number>()
	const { promise: listening, resolve: allListen } = Promise.withResolvers<void>()
	let stopping = false

	function start(slot: number) {
		const child = spawn(ownCommand(), {
			env: { ...process.env, PORT: String(port), [WORKER_ENV]: String(slot), [PRIMARY_ENV]: String(process.pid) },
			stdin: 'ignore',
			stdout: 'inherit',
			stderr: 'inherit',
			serialization: 'json',
			ipc(message) {
				if (message !== LISTENING) return
				listened.add(slot)
				if (listened.size === count) allListen()
			}
		})
		running.add(child)
		void child.exited.then((code) => {
			running.delete(child)
			if (stopping) return
			const now = Date.now()
			const recent = [...(deaths.get(slot) ?? []).filter((at) => at > now - 60_000), now]
			deaths.set(slot, recent)
			const delay = restartDelay(recent.length)
			log({ level: 'warn', msg: 'worker died; restarting it', worker: slot, code, signal: child.signalCode, in_ms: delay })
			setTimeout(() => stopping || start(slot), delay)
		})
	}

	for (let slot = 1; slot <= count; slot++) start(slot)

	return {
		listening,
		async stop(signal: NodeJS.Signals): Promise<void> {
			stopping = true
			const exits = [...running].map((child) => child.exited)
			for (const child of running) child.kill(signal)
			await Promise.all(exits)
		}
	}
}

/**
 * In a worker: stops when the primary is gone (killed without a chance to forward a signal),
 * including when it died while this worker was still starting.
 */
export function followParent(stop: () => void): void {
	const primary = Number(process.env[PRIMARY_ENV])
	const orphaned = () => process.ppid !== primary
	if (orphaned()) return stop()
	setInterval(() => orphaned() && stop(), 1000).unref()
}
