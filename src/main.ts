import pkg from '../package.json'
import { createApp } from './app'
import { createVerifier } from './auth'
import { ConfigError, loadConfig } from './config'
import { migrate, openDatabase } from './database'
import { DataDirLocked } from './embedded'
import { jsonLog } from './log'
import { tokenCommand, UsageError } from './token'

const HELP = `todo-api ${pkg.version}: the Todo REST API.

Usage:
  todo-api                          serve the API (settings come from the environment)
  todo-api token --sub ID [--ttl T] print an HS256 token for user ID, signed with
                                    BETTER_AUTH_SECRET; T like 90s, 15m, 1h, 7d (default 1h)
  todo-api --help | --version

Settings: BETTER_AUTH_SECRET, BETTER_AUTH_URL, JWT_ISSUER, JWT_AUDIENCE, DATABASE_URL,
DATA_DIR (./data), PORT (8000), HOST (0.0.0.0), CORS_ORIGINS (http://localhost:3000).`

const SHUTDOWN_GRACE_MS = 9_000

async function serve(): Promise<void> {
	const config = loadConfig()
	const database = await openDatabase(config)
	await migrate(database.db)
	const app = createApp({ db: database.db, verify: createVerifier(config), config, log: jsonLog })
	app.listen({ port: config.port, hostname: config.host, maxRequestBodySize: 1024 * 1024 })
	jsonLog({ level: 'info', msg: 'listening', url: app.server?.url.href, database: database.kind, version: pkg.version })

	let stopping = false
	const stop = async (signal: string) => {
		if (stopping) return
		stopping = true
		jsonLog({ level: 'info', msg: 'stopping', signal })
		setTimeout(() => process.exit(1), SHUTDOWN_GRACE_MS).unref()
		await app.stop()
		await database.close()
		process.exit(0)
	}
	process.on('SIGTERM', () => stop('SIGTERM'))
	process.on('SIGINT', () => stop('SIGINT'))
}

async function main(args: string[]): Promise<void> {
	const [command] = args
	if (command === '--help' || command === '-h' || command === 'help') return console.log(HELP)
	if (command === '--version' || command === '-v') return console.log(pkg.version)
	if (command === 'token') return tokenCommand(args.slice(1))
	if (command !== undefined) throw new UsageError(`Unknown command "${command}"; see todo-api --help.`)
	return serve()
}

main(Bun.argv.slice(2)).catch((error: unknown) => {
	const known = error instanceof ConfigError || error instanceof UsageError || error instanceof DataDirLocked
	console.error(`todo-api: ${known ? (error as Error).message : `cannot start: ${String(error)}`}`)
	process.exit(known && error instanceof UsageError ? 2 : 1)
})
