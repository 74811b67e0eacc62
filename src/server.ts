import pkg from '../package.json'
import { createApp } from './app'
import { createVerifier } from './auth'
import type { Config } from './config'
import { openDatabase } from './database'
import { migrate } from './database/migrate'
import { flushLog, jsonLog } from './log'
import { cacheTokens } from './token-cache'
import { connectionSpreader } from './spread'
import { followParent, superviseWorkers, tellListening, WORKER_ENV, workerCount } from './workers'

const SHUTDOWN_GRACE_MS = 9_000
// In-flight requests get this long after SIGTERM; whoever still holds one then is cut off.
const DRAIN_MS = 5_000
// What is left of the grace for the last log lines to reach a slow reader.
const LOG_FLUSH_MS = 1_000
// Bun answers a body over its limit with a bare 413 of its own; set far above the API's 64 KiB so
// that the app's reader, which stops at 64 KiB whatever the size announced, answers in JSON.
const MAX_BODY_BYTES_BUN = 2 ** 31 - 1

// SO_REUSEPORT shares a port with any process of the same user that sets it too: another todo-api
// left running there would silently take part of the connections. Bound alone first, the port is
// refused when it is taken (PORT=0 picks one), and only then shared with the workers.
function ownPort({ host, port }: Pick<Config, 'host' | 'port'>): number {
	const alone = Bun.listen({ hostname: host, port, socket: { data() {} } })
	const owned = alone.port
	alone.stop(true)
	return owned
}

/** Opens the database, migrates (the primary only), listens, and starts the workers; a signal stops them all. */
export async function serve(config: Config): Promise<void> {
	const isWorker = process.env[WORKER_ENV] !== undefined
	const workers = isWorker ? 1 : workerCount(config.workers, !config.databaseUrl, jsonLog)
	const database = await openDatabase(config)
	// Only the primary migrates, and before any worker exists; every process settles its database
	// first. The app is built while the database answers, and listens once both are done; when a
	// first try cannot reach the database, it listens then, answering /health, and 503 on /ready
	// and /api until they are done.
	const { promise: databaseAway, resolve: waiting } = Promise.withResolvers<void>()
	const settled = database.settle(jsonLog, waiting)
	const startup = isWorker ? settled : settled.then(() => migrate(database.writes, jsonLog, waiting))
	const spreader = workers > 1 ? connectionSpreader() : undefined
	const verify = cacheTokens(createVerifier(config, { log: jsonLog }))
	const app = createApp({ database, verify, config, log: jsonLog, startup, spreader })
	await Promise.race([startup, databaseAway])
	let children: ReturnType<typeof superviseWorkers> | undefined
	let stopping = false
	const stop = async (signal: NodeJS.Signals) => {
		if (stopping) return
		stopping = true
		if (!isWorker) jsonLog({ level: 'info', msg: 'stopping', signal })
		setTimeout(() => process.exit(1), SHUTDOWN_GRACE_MS).unref()
		// A client still sending a body after DRAIN_MS (slowloris, a stuck proxy) is cut off, so the
		// database is always closed, PGlite flushed, and the exit is 0.
		await Promise.race([Promise.all([app.stop(), children?.stop(signal)]), Bun.sleep(DRAIN_MS)])
		await app.server?.stop(true)
		await database.close()
		// Elysia runs the after-response hooks, which log each request, in a setImmediate: the answers
		// sent while the database closed still have theirs to run.
		await new Promise((ran) => setImmediate(ran))
		await flushLog(LOG_FLUSH_MS)
		process.exit(0)
	}
	// Before listening: a signal that comes the instant the server is up must find its handler.
	process.on('SIGTERM', () => stop('SIGTERM'))
	process.on('SIGINT', () => stop('SIGINT'))

	const reusePort = isWorker || workers > 1
	const port = workers > 1 ? ownPort(config) : config.port
	app.listen({ port, hostname: config.host, maxRequestBodySize: MAX_BODY_BYTES_BUN, reusePort })
	const url = app.server?.url.href
	if (isWorker) {
		jsonLog({ level: 'info', msg: 'worker listening', url, worker: process.env[WORKER_ENV], pid: process.pid })
		tellListening()
		followParent(() => stop('SIGTERM'))
	} else jsonLog({ level: 'info', msg: 'listening', url, database: database.kind, workers, version: pkg.version })
	// A start that fails once listening (the database reached at last refuses it) ends the process,
	// a worker's too: the primary then restarts it, where it would otherwise answer 503 for good.
	await startup
	if (workers > 1) {
		children = superviseWorkers(workers - 1, port, jsonLog)
		void children.listening.then(() => spreader?.shared())
	}
}
