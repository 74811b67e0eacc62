interface Waiting<K, V> {
	key: K
	resolve(value: V): void
	reject(error: unknown): void
}

/**
 * Up to `atOnce` calls of `answer` run at a time. Calls made while that many run wait, and the next
 * to finish sends them together, at most `most` of them, as one call. A call is sent at once while
 * fewer run, and under load each round trip serves as many calls as arrived during the last ones.
 * `answer` gives one value per key, in order, and fails by rejecting, as an async function does: a
 * throw would leave every later call waiting. A failure for which `failsAll` is true fails the calls
 * waiting too, which would otherwise meet it one batch at a time.
 *
 * With `wholeTurn`, a call is sent at the end of the event loop's turn it was made in, with every
 * call made in that turn: for an `answer` that is done within the turn it is called in, as PGlite
 * is, which runs a statement in this thread. Each HTTP request of a turn runs in a task of its own,
 * after which the statement it asked for has already run: no call would find another running.
 */
export function coalesced<K, V>(
	answer: (keys: K[]) => Promise<V[]>,
	{ most, atOnce, failsAll, wholeTurn = false }: { most: number; atOnce: number; failsAll: (error: unknown) => boolean; wholeTurn?: boolean }
): (key: K) => Promise<V> {
	let waiting: Waiting<K, V>[] = []
	let running = 0
	let turnEnds = false
	const send = () => {
		running++
		const batch = waiting.length > most ? waiting.splice(0, most) : waiting
		if (batch === waiting) waiting = []
		const done = () => {
			running--
			if (waiting.length) send()
		}
		answer(batch.map((call) => call.key)).then(
			(values) => {
				for (let i = 0; i < batch.length; i++) batch[i]?.resolve(values[i] as V)
				done()
			},
			(error: unknown) => {
				for (const call of batch) call.reject(error)
				if (failsAll(error)) for (const call of waiting.splice(0)) call.reject(error)
				done()
			}
		)
	}
	const endTurn = () => {
		turnEnds = false
		if (running < atOnce && waiting.length) send()
	}
	return (key) =>
		new Promise<V>((resolve, reject) => {
			waiting.push({ key, resolve, reject })
			if (running >= atOnce) return
			if (!wholeTurn) send()
			else if (!turnEnds) {
				turnEnds = true
				setImmediate(endTurn)
			}
		})
}
