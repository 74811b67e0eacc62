export type Log = (fields: Record<string, unknown>) => void

// Whatever reaches the log (an error's message, a driver's text) may quote a request: a bearer
// token, or the values a failed query was given, which are users' data. Both are masked.
const TOKEN = /\beyJ[\w-]*\.[\w-]+\.[\w-]*/g
const QUERY_VALUES = /^(\s*params:).*$/gm

export const redact = (text: string) => text.replace(TOKEN, '[token]').replace(QUERY_VALUES, '$1 [redacted]')

const redactStrings = (_key: string, value: unknown) => (typeof value === 'string' ? redact(value) : value)

/** One JSON object per line on stdout. */
export const jsonLog: Log = (fields) => {
	const entry = { time: new Date().toISOString(), ...fields }
	let line = JSON.stringify(entry)
	// A replacer makes JSON.stringify several times slower, and nearly every line (one per request)
	// holds nothing to mask: only a line that may is written again through it.
	if (line.includes('eyJ') || line.includes('params:')) line = JSON.stringify(entry, redactStrings)
	process.stdout.write(`${line}\n`)
}

export const silentLog: Log = () => {}
