export type Log = (fields: Record<string, unknown>) => void

// Whatever reaches the log (an error's message, a driver's text) may quote a request: a bearer
// token, or the values a failed query was given, which are users' data. Both are masked.
const TOKEN = /\beyJ[\w-]*\.[\w-]+\.[\w-]*/g
const QUERY_VALUES = /^(\s*params:).*$/gm

export const redact = (text: string) => text.replace(TOKEN, '[token]').replace(QUERY_VALUES, '$1 [redacted]')

/** One JSON object per line on stdout. */
export const jsonLog: Log = (fields) => {
	const line = JSON.stringify({ time: new Date().toISOString(), ...fields }, (_key, value: unknown) =>
		typeof value === 'string' ? redact(value) : value
	)
	process.stdout.write(`${line}\n`)
}

export const silentLog: Log = () => {}
