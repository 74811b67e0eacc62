import pkg from '../package.json'
import { ConfigError, loadConfig } from './config'
import { CannotLockDataDir, compileWasmOnEveryCore } from './database/embedded'
import { tokenCommand, UsageError } from './token'
import { ownCommand } from './workers'

const HELP = `todo-api ${pkg.version}: the Todo REST API.

Usage:
  todo-api                          serve the API (settings come from the environment)
  todo-api token --sub ID [--ttl T] print an HS256 token for user ID, signed with
                                    BETTER_AUTH_SECRET; T like 90s, 15m, 1h, 7d (default 1h)
  todo-api --help | --version

Settings: BETTER_AUTH_SECRET, BETTER_AUTH_URL, JWT_ISSUER, JWT_AUDIENCE, DATABASE_URL,
DATA_DIR (./data), PORT (8000), HOST (0.0.0.0), CORS_ORIGINS (http://localhost:3000),
WORKERS (processes serving the port; default one per core; always 1 on the embedded database).`

async function main(args: string[]): Promise<void> {
	const [command] = args
	if (command === '--help' || command === '-h' || command === 'help') return console.log(HELP)
	if (command === '--version' || command === '-v') return console.log(pkg.version)
	if (command === 'token') return tokenCommand(args.slice(1))
	if (command !== undefined) throw new UsageError(`Unknown command "${command}"; see todo-api --help.`)
	const config = loadConfig()
	if (!config.databaseUrl) compileWasmOnEveryCore(ownCommand())
	// Imported only now: the other commands need none of it, and a start on PGlite has just run
	// itself again in place, which would otherwise evaluate the app, its framework and drivers twice.
	const { serve } = await import('./server')
	return serve(config)
}

// PGlite's file errors are Emscripten's: plain objects with a wasm errno number.
const WASM_ERRNO: Record<number, string> = {
	2: 'permission denied',
	29: 'input/output error',
	51: 'no space left on the device',
	69: 'read-only file system'
}

// What stopped a start, on one line. Drizzle's message is only the statement that failed: why it
// failed is its cause's, the database's own words.
function reason(error: unknown): string {
	if (error instanceof Error) {
		const text = error.cause === undefined ? error.message : `${reason(error.cause)}, in: ${error.message}`
		return text.replace(/\s*params:\s*$/, '').replace(/\s+/g, ' ')
	}
	const errno = (error as { errno?: unknown } | null)?.errno
	if (typeof errno === 'number') return `the embedded database's files: ${WASM_ERRNO[errno] ?? `errno ${errno}`}`
	return String(error)
}

main(Bun.argv.slice(2)).catch((error: unknown) => {
	const known = error instanceof ConfigError || error instanceof UsageError || error instanceof CannotLockDataDir
	console.error(`todo-api: ${known ? error.message : `cannot start: ${reason(error)}`}`)
	process.exit(error instanceof UsageError ? 2 : 1)
})
