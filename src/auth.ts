import { Elysia } from 'elysia'
import { decodeProtectedHeader, errors, jwtVerify, type JWTPayload } from 'jose'
import type { Config } from './config'
import { AuthenticationRequired } from './errors'
import { type KeySetOptions, KeySetUnavailable, remoteKeySet } from './jwks'
import { jsonLog, type Log } from './log'
import { storableText } from './text'

/** Who a verified token names, and until when (ms since the epoch) it may be taken as such. */
export interface Identity {
	userId: string
	until: number
}

/** Resolves to the identity a bearer token carries, or throws AuthenticationRequired. */
export type Verifier = (token: string) => Promise<Identity>

interface Verified {
	payload: JWTPayload
	bySecret: boolean
	/** A key set's token is trusted only as long as the keys that verified it: one whose key Better
	 * Auth has dropped is refused once the keys are refreshed, whoever remembered it. */
	trustedUntil: number
}

export interface VerifierOptions {
	log?: Log
	jwks?: KeySetOptions
}

const CLOCK_SKEW_SECONDS = 30
const ASYMMETRIC = ['EdDSA', 'Ed25519', 'ES256', 'ES384', 'ES512', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512']

// OpenID Connect caps a subject at 255 characters. Far longer ids could not be stored: the index
// on a user's tasks holds at most about 2,700 bytes a row, so every write of theirs would fail.
const MAX_USER_ID_LENGTH = 255

// Base64url leaves spare bits in a segment's last character, and jose ignores them, so one
// signature has several spellings: a token with its last character changed can still verify.
// Only the spelling the encoding gives is taken. Padding, which RFC 7515 leaves out but a
// hand-made token may keep, changes no byte and is allowed.
const canonical = (token: string) =>
	token.split('.').every((part) => {
		const bare = part.replace(/={1,2}$/, '')
		return Buffer.from(bare, 'base64url').toString('base64url') === bare
	})

const nonEmpty = (value: unknown): value is string => typeof value === 'string' && value.length > 0

// Tasks are found by the id as Postgres stores it: an id it would change names no one, not
// whoever's id it would become.
const storable = (id: string | undefined) => (id !== undefined && storableText(id) ? id : undefined)

// The JWT plugin's tokens name the user in `sub`, and must. The session cookie cache's tokens
// (strategy "jwt", Better Auth 1.7), signed with the secret, carry no `sub` but
// `{session: {userId, expiresAt, …}, user: {id, …}}`.
function userIdOf(payload: JWTPayload, bySecret: boolean): string | undefined {
	if (payload.sub !== undefined || !bySecret) return nonEmpty(payload.sub) ? storable(payload.sub) : undefined
	const session = payload.session as { userId?: unknown } | undefined
	const user = payload.user as { id?: unknown } | undefined
	const fromSession = session?.userId
	const fromUser = user?.id
	if (nonEmpty(fromSession) && nonEmpty(fromUser) && fromSession !== fromUser) return undefined
	return storable(nonEmpty(fromSession) ? fromSession : nonEmpty(fromUser) ? fromUser : undefined)
}

// A cookie cache token outlives a session signed out or expired on the server for up to its
// maxAge; the session's own expiry, when the token carries it, is still honoured. NaN when unreadable.
function sessionEnd(payload: JWTPayload): number {
	const expiresAt = (payload.session as { expiresAt?: unknown } | undefined)?.expiresAt
	if (expiresAt === undefined) return Infinity
	return typeof expiresAt === 'string' || typeof expiresAt === 'number' ? new Date(expiresAt).getTime() : Number.NaN
}

// BETTER_AUTH_URL read as Better Auth reads its own baseURL: it writes the URL's origin in iss and
// aud (lower-case host, no default port, no path), and serves its routes at the URL's path when
// it has one, else at /api/auth.
function betterAuthAt(authUrl: string): { origin: string; jwks: URL } {
	const { origin, pathname } = new URL(authUrl)
	return { origin, jwks: new URL(`${pathname.replace(/\/+$/, '') || '/api/auth'}/jwks`, origin) }
}

export function createVerifier(
	config: Partial<Pick<Config, 'secret' | 'authUrl' | 'issuer' | 'audience'>>,
	{ log = jsonLog, jwks: keySetOptions }: VerifierOptions = {}
): Verifier {
	const secret = config.secret ? new TextEncoder().encode(config.secret) : undefined
	const betterAuth = config.authUrl ? betterAuthAt(config.authUrl) : undefined
	const keySet = betterAuth && remoteKeySet(betterAuth.jwks, log, keySetOptions)
	const expected = betterAuth
		? { issuer: config.issuer ?? betterAuth.origin, audience: config.audience ?? betterAuth.origin }
		: {}
	// The contract holds only the key set's tokens to an iss and aud; a setting that changes nothing
	// is said at start (by each process) rather than left to look as if it did.
	if (!betterAuth && (config.issuer || config.audience))
		log({ level: 'warn', msg: 'JWT_ISSUER and JWT_AUDIENCE apply to the tokens of BETTER_AUTH_URL, which is not set: ignored' })
	const common = { clockTolerance: CLOCK_SKEW_SECONDS, requiredClaims: ['exp'] }

	// The header's alg picks the key before anything is verified, so an HS256 token is never
	// checked against a public key and an asymmetric one never against the secret.
	async function verifyPayload(token: string): Promise<Verified> {
		if (!canonical(token)) throw new AuthenticationRequired('The bearer token is not a well-formed JWT.')
		const { alg } = decodeProtectedHeader(token)
		if (alg === 'HS256' && secret) {
			const { payload } = await jwtVerify(token, secret, { ...common, algorithms: ['HS256'] })
			return { payload, bySecret: true, trustedUntil: Infinity }
		}
		if (alg && ASYMMETRIC.includes(alg) && keySet) {
			// Read before the keys are used: a refresh that lands meanwhile must not lengthen their trust.
			const trustedUntil = keySet.dueAt()
			const { payload } = await jwtVerify(token, keySet.getKey, { ...common, ...expected, algorithms: [alg] })
			return { payload, bySecret: false, trustedUntil }
		}
		throw new AuthenticationRequired('The token is signed with an algorithm this server does not accept.')
	}

	return async (token) => {
		let verified: Verified
		try {
			verified = await verifyPayload(token)
		} catch (error) {
			if (error instanceof AuthenticationRequired) throw error
			if (error instanceof KeySetUnavailable) log({ level: 'warn', msg: 'token refused', reason: error.message })
			if (error instanceof errors.JWTExpired) throw new AuthenticationRequired('The bearer token has expired.')
			// Names the claim alone, not the value expected: enough for whoever sets JWT_ISSUER or
			// JWT_AUDIENCE, or sends Better Auth's session-cache cookie, whose aud is its own.
			if (error instanceof errors.JWTClaimValidationFailed)
				throw new AuthenticationRequired(`The bearer token's "${error.claim}" claim is not the one this API expects.`)
			throw new AuthenticationRequired('The bearer token is invalid or expired.')
		}
		const { payload, bySecret, trustedUntil } = verified
		// jose gives nbf the skew it gives exp; the contract allows skew on exp only. Better Auth
		// puts an nbf in no token unless the app's own payload has one.
		if (payload.nbf !== undefined && payload.nbf > Date.now() / 1000)
			throw new AuthenticationRequired('The bearer token is not valid yet.')
		const userId = userIdOf(payload, bySecret)
		if (!userId) throw new AuthenticationRequired('The token names no user.')
		// Counted in characters, as titles are: a string's length counts an emoji twice.
		if (userId.length > MAX_USER_ID_LENGTH && [...userId].length > MAX_USER_ID_LENGTH)
			throw new AuthenticationRequired(`The token's user id is longer than ${MAX_USER_ID_LENGTH} characters.`)
		const session = sessionEnd(payload)
		if (!(session + CLOCK_SKEW_SECONDS * 1000 > Date.now()))
			throw new AuthenticationRequired('The session in the token has expired.')
		// jwtVerify required exp, so it is a number here.
		return { userId, until: Math.min((payload.exp ?? 0) * 1000, session, trustedUntil) }
	}
}

const BEARER = /^Bearer[ \t]+([A-Za-z0-9\-_.~+/]+=*)[ \t]*$/i

/** Derives `userId` from the Authorization header for every route registered after it. */
export const authentication = (verify: Verifier) =>
	new Elysia({ name: 'authentication' }).derive({ as: 'scoped' }, async ({ request }) => {
		const match = BEARER.exec(request.headers.get('authorization') ?? '')
		if (!match?.[1]) throw new AuthenticationRequired()
		return { userId: (await verify(match[1])).userId }
	})
