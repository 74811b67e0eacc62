export type Log = (fields: Record<string, unknown>) => void

/** One JSON object per line on stdout. */
export const jsonLog: Log = (fields) => {
	process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), ...fields })}\n`)
}

export const silentLog: Log = () => {}
