interface Waiting<K, V> {
	key: K
	resolve(value: V): void
	reject(error: unknown): void
}

/**
 * One call at a time goes to `answer`; calls made meanwhile wait and then go together, up to
 * `most` at once, as its next call. A lone call is sent at once, and under load each round trip
 * serves as many calls as arrived during the last one. `answer` gives one value per key, in order,
 * and fails by rejecting, as an async function does: a throw would leave every later call waiting.
 */
export function coalesced<K, V>(answer: (keys: K[]) => Promise<V[]>, most: number): (key: K) => Promise<V> {
	let waiting: Waiting<K, V>[] = []
	let busy = false
	const send = () => {
		if (!waiting.length) {
			busy = false
			return
		}
		busy = true
		const batch = waiting.length > most ? waiting.splice(0, most) : waiting
		if (batch === waiting) waiting = []
		answer(batch.map((call) => call.key)).then(
			(values) => {
				for (let i = 0; i < batch.length; i++) batch[i]?.resolve(values[i] as V)
				send()
			},
			(error: unknown) => {
				for (const call of batch) call.reject(error)
				send()
			}
		)
	}
	return (key) =>
		new Promise<V>((resolve, reject) => {
			waiting.push({ key, resolve, reject })
			if (!busy) send()
		})
}
