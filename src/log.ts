export type Log = (fields: Record<string, unknown>) => void

// Whatever reaches the log (an error's message, a driver's text) may quote a request: a bearer
// token, or the values a failed query was given, which are users' data. Both are masked. Drizzle
// ends its message with the values, and a value may hold line breaks: all that follows is masked.
const TOKEN = /\beyJ[\w-]*\.[\w-]+\.[\w-]*/g
const QUERY_VALUES = /^(\s*params:)[\s\S]*/m

const redact = (text: string) => text.replace(TOKEN, '[token]').replace(QUERY_VALUES, '$1 [redacted]')

/** An error for the log: its text, and its stack without the copy of that text it starts with, so
 * that no frame follows a failed query's values, which the log masks to the end. */
export function errorFields(error: unknown): { error: string; stack?: string } {
	const text = String(error)
	if (!(error instanceof Error) || !error.stack) return { error: text }
	return { error: text, stack: error.stack.startsWith(text) ? error.stack.slice(text.length + 1) : error.stack }
}

const redactStrings = (_key: string, value: unknown) => (typeof value === 'string' ? redact(value) : value)

// stdout is a pipe to a log collector, and Bun keeps in memory, without bound, what the collector
// has not read yet: a stalled collector would grow the process until it is killed. Once the pipe is
// full, at most MAX_BACKLOG_BYTES more are kept; later lines are dropped and counted until it
// drains. A collector that went away (EPIPE) ends the log, not the process.
const MAX_BACKLOG_BYTES = 4 * 1024 * 1024
let full = false
let backlog = 0
let dropped = 0
let closed = false
// The lines of one turn of the event loop, written together: under load a turn answers many
// requests, and one write each would cost a system call, and a wake-up of the reader, per request.
let pending = ''

process.stdout.on('error', () => {
	closed = true
})
process.stdout.on('drain', () => {
	full = false
	backlog = 0
	if (dropped === 0) return
	const lost = dropped
	dropped = 0
	jsonLog({ level: 'warn', msg: 'log lines dropped: stdout was not being read', dropped: lost })
})
process.on('exit', writePending)

function writePending(): void {
	const lines = pending
	pending = ''
	if (closed || lines === '') return
	if (full && backlog >= MAX_BACKLOG_BYTES) {
		dropped += lines.split('\n').length - 1
		return
	}
	if (full) backlog += lines.length
	if (!process.stdout.write(lines)) full = true
}

function write(line: string): void {
	if (pending === '') setImmediate(writePending)
	pending += line
}

/** Resolves once what was logged has been handed to stdout's reader, or after `ms`. */
export async function flushLog(ms: number): Promise<void> {
	writePending()
	if (full && !closed) await Promise.race([new Promise((drained) => process.stdout.once('drain', drained)), Bun.sleep(ms)])
}

/** One JSON object per line on stdout. */
export const jsonLog: Log = (fields) => {
	const entry = { time: new Date().toISOString(), ...fields }
	let line = JSON.stringify(entry)
	// A replacer makes JSON.stringify several times slower, and nearly every line (one per request)
	// holds nothing to mask: only a line that may is written again through it.
	if (line.includes('eyJ') || line.includes('params:')) line = JSON.stringify(entry, redactStrings)
	write(`${line}\n`)
}

export const silentLog: Log = () => {}
