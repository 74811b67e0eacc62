import { cors } from '@elysiajs/cors'
import { openapi } from '@elysiajs/openapi'
import { Elysia, ValidationError } from 'elysia'
import type { Verifier } from './auth'
import type { Config } from './config'
import type { Pools } from './database'
import { codeOf, isUnavailable } from './database/unavailable'
import { readBody } from './body'
import {
	ApiError,
	AuthenticationRequired,
	InternalError,
	MethodNotAllowed,
	ResourceNotFound,
	RouteNotFound,
	ServiceUnavailable,
	ValidationFailed
} from './errors'
import { healthRoutes } from './health'
import { errorFields, type Log } from './log'
import type { Spreader } from './spread'
import { taskRoutes } from './tasks/routes'
import pkg from '../package.json'

export interface AppDependencies {
	database: Pools
	verify: Verifier
	config: Pick<Config, 'corsOrigins'>
	log: Log
	/** The database's start (settled, and migrated by the primary), when the app may listen before it
	 * is done: until then /api and /ready answer 503. */
	startup?: Promise<void>
	/** In a primary with workers: closes the connections that came before the workers listened. */
	spreader?: Spreader
}

const SANE_REQUEST_ID = /^[\w.:@/+=-]{1,128}$/

// no-store: a user's tasks must not stay in a shared cache or a shared machine's browser.
const SECURITY_HEADERS = {
	'cache-control': 'no-store',
	'x-content-type-options': 'nosniff',
	'x-frame-options': 'DENY',
	'referrer-policy': 'no-referrer',
	'cross-origin-resource-policy': 'same-site'
}

function validationDetail(error: ValidationError): string {
	const first = error.valueError
	const custom = first?.schema.error
	const field = first?.path.split('/').filter(Boolean).join('.')
	if (field && first?.value === undefined) return `"${field}" is required.`
	if (typeof custom === 'string') return custom
	return field ? `"${field}": ${first?.message}.` : `Invalid ${error.type}: ${first?.message ?? error.message}.`
}

// The routes that cannot answer before the database has started; /health, the docs, unknown routes
// and wrong methods can.
const NEEDS_DATABASE = /^\/(api|ready)(\/|$)/

// How long a browser may keep a preflight's answer.
const PREFLIGHT_MAX_AGE_SECONDS = '600'

const isPreflight = (request: Request) =>
	request.method === 'OPTIONS' && request.headers.has('access-control-request-method')

// The path of a request's URL, which Bun builds from any Host it was sent (`Host: x:abc`), so that
// new URL() may throw on it. The server speaks plain HTTP: the path starts after "http://" and the Host.
function pathOf(url: string): string {
	const start = url.indexOf('/', 'http://'.length)
	if (start < 0) return '/'
	const query = url.indexOf('?', start)
	return url.slice(start, query < 0 ? undefined : query)
}

export function createApp({ database, verify, config, log, startup, spreader }: AppDependencies) {
	let startingUp = startup !== undefined
	// A failure is reported by whoever started the database; the process then exits.
	startup?.then(
		() => (startingUp = false),
		() => {}
	)
	const started = new WeakMap<Request, { id: string; at: number }>()
	const badBodies = new WeakMap<Request, string>()
	const routePatterns: { pattern: RegExp; methods: string[] }[] = []

	function allowedMethods(path: string): string[] {
		return routePatterns.find(({ pattern }) => pattern.test(path))?.methods ?? []
	}

	// A method no route of the path has: 405 where the path has routes, else 404.
	function unrouted(path: string): ApiError {
		const allow = allowedMethods(path)
		return allow.length ? new MethodNotAllowed(allow) : new RouteNotFound()
	}

	function toApiError(code: string | number, error: unknown, request: Request, path: string): ApiError {
		if (error instanceof ApiError) return error
		if (error instanceof ValidationError) {
			// The only params are a task's id (TaskId in tasks/model.ts): a bad one names no task.
			if (error.type === 'params') return new ResourceNotFound()
			return new ValidationFailed(badBodies.get(request) ?? validationDetail(error))
		}
		// The path as the router read it: a URL parser would resolve dot segments the router did not.
		if (code === 'NOT_FOUND') return unrouted(path)
		// Elysia wraps what the body reader throws (PayloadTooLarge) in a ParseError.
		if (code === 'PARSE')
			return error instanceof Error && error.cause instanceof ApiError
				? error.cause
				: new ValidationFailed('The request body is not valid JSON.')
		if (isUnavailable(error)) {
			// The code only: a driver's message may name the database host.
			log({ level: 'warn', request_id: started.get(request)?.id, msg: 'database unavailable', code: codeOf(error) })
			return new ServiceUnavailable()
		}
		// Drizzle's message names the query but not why it failed: the database's SQLSTATE does, and
		// carries no user data, unlike its message.
		log({
			level: 'error',
			request_id: started.get(request)?.id,
			code: codeOf(error),
			...errorFields(error)
		})
		return new InternalError()
	}

	// Elysia reads the path from the 11th character of the URL on, taking every Host to be at least
	// four characters long: under `Host: api` it routed /zzz/api/tasks to /api/tasks and lost 405s.
	// Without that shortcut it finds the path after the Host, as pathOf does.
	const app = new Elysia({ handler: { standardHostname: false } })
		.onRequest(({ request, server, set }) => {
			const sent = request.headers.get('x-request-id')
			const id = sent && SANE_REQUEST_ID.test(sent) ? sent : crypto.randomUUID()
			started.set(request, { id, at: performance.now() })
			Object.assign(set.headers, SECURITY_HEADERS, { 'x-request-id': id })
			if (spreader?.closes(request, server)) set.headers.connection = 'close'
			// Bun's default for JSON adds a charset, which a client comparing the header with the
			// contract's "application/json" refuses; JSON is UTF-8 by definition. A preflight has no body.
			if (!isPreflight(request)) set.headers['content-type'] = 'application/json'
		})
		.onParse({ as: 'global' }, ({ request }) => readBody(request, badBodies))
		.onError({ as: 'global' }, ({ code, error, request, path, set }) => {
			const failure = toApiError(code, error, request, path)
			set.status = failure.status
			if (failure instanceof AuthenticationRequired) set.headers['www-authenticate'] = 'Bearer'
			if (failure instanceof MethodNotAllowed) set.headers.allow = failure.allow.join(', ')
			return { detail: failure.message, error_code: failure.code }
		})
		.onAfterResponse({ as: 'global' }, (context) => {
			const request = started.get(context.request)
			log({
				level: 'info',
				request_id: request?.id,
				method: context.request.method,
				route: context.route,
				status: context.set.status,
				ms: request ? Math.round((performance.now() - request.at) * 100) / 100 : undefined,
				user_id: 'userId' in context ? context.userId : undefined
			})
		})
		.use(
			cors({
				origin: config.corsOrigins,
				methods: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'],
				allowedHeaders: ['Authorization', 'Content-Type'],
				exposeHeaders: ['X-Total-Count', 'X-Request-Id', 'Location'],
				credentials: false,
				// Off: the plugin's preflight answers every OPTIONS with 204, on any path. The next hook
				// answers preflights.
				preflight: false
			})
		)
		// After the CORS plugin's hook, which has set the origin's headers. A preflight is answered 204 on
		// any path, so that a page reads the answer to its request, a 404 too; any other OPTIONS is
		// routed as every method is, and no route has OPTIONS.
		.onRequest(({ request, set }) => {
			if (request.method !== 'OPTIONS') return
			if (!isPreflight(request)) throw unrouted(pathOf(request.url))
			set.headers['access-control-max-age'] = PREFLIGHT_MAX_AGE_SECONDS
			return new Response(null, { status: 204 })
		})
		// After the CORS plugin's hook, so that a page reads these 503s.
		.onRequest(({ request }) => {
			if (!startingUp) return
			const path = pathOf(request.url)
			if (NEEDS_DATABASE.test(path) && allowedMethods(path).includes(request.method)) throw new ServiceUnavailable()
		})
		.use(
			openapi({
				path: '/docs',
				// The plugin's default is relative ("docs/json"), which /docs/ resolves to /docs/docs/json.
				scalar: { url: '/docs/json' },
				documentation: {
					info: {
						title: 'Todo API',
						version: pkg.version,
						description: "The tasks of the user the bearer token names; another user's task answers 404."
					},
					components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } } }
				}
			})
		)
		.use(healthRoutes(database))
		.use(taskRoutes(database, verify))

	// Elysia answers HEAD wherever there is a GET, so an Allow that lists GET lists HEAD too.
	const methods = new Map<string, string[]>()
	for (const { method, path } of app.routes)
		methods.set(path, [...(methods.get(path) ?? []), ...(method === 'GET' ? ['GET', 'HEAD'] : [method])])
	for (const [path, allowed] of methods)
		routePatterns.push({ pattern: new RegExp(`^${path.replace(/:\w+/g, '[^/]+')}/?$`), methods: allowed })

	return app
}

export type App = ReturnType<typeof createApp>
