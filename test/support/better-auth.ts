// A real Better Auth server for the tests: the npm package with email+password, the JWT plugin
// and the session cookie cache in "jwt" mode, on its own in-memory PGlite, served by Bun.serve
// on a random loopback port. Its schema comes from Better Auth's own migration planner, the one
// behind `auth migrate`.
import { PGlite } from '@electric-sql/pglite'
import { betterAuth } from 'better-auth'
import { getMigrations } from 'better-auth/db/migration'
import { createJwk, type JWSAlgorithms, jwt } from 'better-auth/plugins/jwt'
import { PGliteDialect } from 'kysely'
import { createApp } from '../../src/app'
import { createVerifier, type VerifierOptions } from '../../src/auth'
import { silentLog } from '../../src/log'
import { cacheTokens } from '../../src/token-cache'
import { ORIGIN, SECRET, testDatabase } from './app'

const PASSWORD = 'correct horse battery staple'

export interface AuthUser {
	id: string
	email: string
	/** The Cookie header a browser would send back to Better Auth. */
	cookie: string
	/** The session cookie cache's value (`better-auth.session_data`), a JWT in "jwt" mode. */
	sessionData: string
}

export interface AuthServer {
	/** Better Auth's base URL, which is also the `iss` and `aud` of its JWTs. */
	url: string
	/** How many times /api/auth/jwks was fetched. */
	jwksFetches(): number
	signUp(): Promise<AuthUser>
	/** A JWT the way a Next.js frontend gets one: GET /api/auth/token with the session cookie. */
	token(user: AuthUser): Promise<string>
	/** The JWT from the `set-auth-jwt` header that the JWT plugin adds to GET /api/auth/get-session. */
	sessionJwt(user: AuthUser): Promise<string>
	/** Signs any claims with Better Auth's current key (its server-only signJWT endpoint). */
	sign(payload: Record<string, unknown>): Promise<string>
	/** Mints a new signing key; later tokens carry its kid, the old key stays in the JWKS. */
	rotateKey(): Promise<void>
	/** Stops answering (connections refused) until resume(). */
	pause(): Promise<void>
	resume(): void
	close(): Promise<void>
}

export async function startBetterAuth({
	secret = SECRET,
	expirationTime = '15m',
	alg
}: {
	secret?: string
	expirationTime?: string
	/** The algorithm of its signing keys (`jwt.jwks.keyPairConfig`); Better Auth's default, EdDSA, if unset. */
	alg?: JWSAlgorithms
} = {}): Promise<AuthServer> {
	let handle: (request: Request) => Promise<Response> = async () => new Response('starting', { status: 503 })
	let jwksFetches = 0
	const serve = (port = 0) =>
		Bun.serve({
			hostname: '127.0.0.1',
			port,
			fetch(request) {
				if (new URL(request.url).pathname === '/api/auth/jwks') jwksFetches++
				return handle(request)
			}
		})
	let server = serve()
	const url = `http://127.0.0.1:${server.port}`
	const jwtOptions = { jwt: { expirationTime }, jwks: { keyPairConfig: alg && { alg } } }
	const pglite = new PGlite()
	const options = {
		baseURL: url,
		secret,
		database: { dialect: new PGliteDialect({ pglite }), type: 'postgres' as const },
		emailAndPassword: { enabled: true },
		session: { cookieCache: { enabled: true, strategy: 'jwt' as const, maxAge: 300 } },
		plugins: [jwt(jwtOptions)],
		rateLimit: { enabled: false },
		telemetry: { enabled: false },
		logger: { disabled: true }
	}
	await (await getMigrations(options)).runMigrations()
	const auth = betterAuth(options)
	handle = auth.handler

	const json = async (response: Response) => {
		if (!response.ok) throw new Error(`Better Auth answered ${response.status}: ${await response.text()}`)
		return response.json()
	}
	const get = (path: string, user: AuthUser) => fetch(`${url}/api/auth${path}`, { headers: { cookie: user.cookie } })

	return {
		url,
		jwksFetches: () => jwksFetches,
		async signUp() {
			const email = `${crypto.randomUUID()}@example.com`
			const response = await fetch(`${url}/api/auth/sign-up/email`, {
				method: 'POST',
				headers: { 'content-type': 'application/json', origin: url },
				body: JSON.stringify({ email, password: PASSWORD, name: 'Test User' })
			})
			const cookies = response.headers.getSetCookie().map((line) => line.split(';')[0] ?? '')
			const { user } = (await json(response)) as { user: { id: string } }
			const sessionData = cookies.find((c) => c.startsWith('better-auth.session_data='))?.split('=')[1]
			if (!sessionData) throw new Error(`sign-up set no session_data cookie: ${cookies.join('; ')}`)
			return { id: user.id, email, cookie: cookies.join('; '), sessionData }
		},
		async token(user) {
			return ((await json(await get('/token', user))) as { token: string }).token
		},
		async sessionJwt(user) {
			const response = await get('/get-session', user)
			await json(response)
			const token = response.headers.get('set-auth-jwt')
			if (!token) throw new Error('get-session sent no set-auth-jwt header')
			return token
		},
		async sign(payload) {
			return (await auth.api.signJWT({ body: { payload } })).token
		},
		async rotateKey() {
			await createJwk({ context: await auth.$context } as Parameters<typeof createJwk>[0], jwtOptions)
		},
		async pause() {
			await server.stop(true)
		},
		resume() {
			server = serve(Number(new URL(url).port))
		},
		async close() {
			await server.stop(true)
			await pglite.close()
		}
	}
}

/**
 * The app built as test/support/app.ts builds it (verified tokens cached), but verifying against the JWKS of the Better Auth
 * at authUrl (BETTER_AUTH_URL) as well as with the shared secret (none when secret is null).
 */
export async function jwksApp(
	authUrl: string,
	{
		secret = SECRET,
		issuer,
		audience,
		...options
	}: VerifierOptions & { secret?: string | null; issuer?: string; audience?: string } = {}
) {
	const verify = cacheTokens(createVerifier({ secret: secret ?? undefined, authUrl, issuer, audience }, { log: silentLog, ...options }))
	return createApp({ database: await testDatabase(), verify, config: { corsOrigins: [ORIGIN] }, log: silentLog })
}
