import { PayloadTooLarge } from './errors'
import { readAtMost } from './stream'

const MAX_BODY_BYTES = 64 * 1024

// Bytes that are not UTF-8 are refused, not replaced by U+FFFD and stored.
const UTF8 = new TextDecoder('utf-8', { fatal: true })

// Reads at most MAX_BODY_BYTES, whatever Content-Length claims. Bun refuses a request that gives its
// length twice, or a length and chunks, and reads no further than a length given: a body of a
// length within the limit is read whole, which costs a quarter of the CPU of reading its stream.
// A body that is not a JSON object is recorded and replaced by {}, which every body schema here
// rejects: it then fails validation after authentication rather than before it, so an anonymous
// caller learns nothing of the route.
export async function readBody(request: Request, badBodies: WeakMap<Request, string>): Promise<unknown> {
	const length = request.headers.get('content-length')
	if (Number(length) > MAX_BODY_BYTES) throw new PayloadTooLarge(MAX_BODY_BYTES)
	const bytes = length === null ? await readAtMost(request.body, MAX_BODY_BYTES) : await request.arrayBuffer()
	if (!bytes) throw new PayloadTooLarge(MAX_BODY_BYTES)
	let body: unknown
	try {
		body = JSON.parse(UTF8.decode(bytes))
	} catch {
		badBodies.set(request, 'The request body is not valid JSON.')
		return {}
	}
	if (typeof body === 'object' && body !== null && !Array.isArray(body)) return body
	badBodies.set(request, 'The request body must be a JSON object.')
	return {}
}
