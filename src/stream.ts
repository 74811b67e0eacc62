/**
 * The bytes of a stream that ends within `limit` bytes; undefined, once `limit` is passed, with the
 * rest cancelled unread. A reader rather than `for await`: the frontend type-checks the app for
 * Eden under the DOM's types, in which a ReadableStream is not async-iterable.
 */
export async function readAtMost(stream: ReadableStream<Uint8Array> | null, limit: number): Promise<Uint8Array | undefined> {
	const chunks: Uint8Array[] = []
	let size = 0
	const reader = stream?.getReader()
	if (reader)
		for (let read = await reader.read(); !read.done; read = await reader.read()) {
			size += read.value.byteLength
			if (size > limit) {
				await reader.cancel()
				return undefined
			}
			chunks.push(read.value)
		}
	return Buffer.concat(chunks)
}
