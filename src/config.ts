export interface Config {
	secret: string | undefined
	authUrl: string | undefined
	issuer: string | undefined
	audience: string | undefined
	databaseUrl: string | undefined
	dataDir: string
	port: number
	host: string
	corsOrigins: string[]
	/** WORKERS as set; src/workers.ts decides the count from it and the database. */
	workers: number | undefined
}

export class ConfigError extends Error {}

const MIN_SECRET_BYTES = 32
const MAX_WORKERS = 64

function url(name: string, value: string, protocols: string[]): string {
	let parsed: URL
	try {
		parsed = new URL(value)
	} catch {
		throw new ConfigError(`${name} is not a valid URL.`)
	}
	if (!protocols.includes(parsed.protocol))
		throw new ConfigError(`${name} must start with ${protocols.map((p) => `${p}//`).join(' or ')}.`)
	return value
}

function port(value: string): number {
	if (!/^\d{1,5}$/.test(value) || Number(value) > 65535)
		throw new ConfigError(`PORT must be a whole number from 0 to 65535, not "${value}".`)
	return Number(value)
}

function workers(value: string): number {
	if (!/^\d{1,2}$/.test(value) || Number(value) < 1 || Number(value) > MAX_WORKERS)
		throw new ConfigError(`WORKERS must be a whole number from 1 to ${MAX_WORKERS}, not "${value}".`)
	return Number(value)
}

// libpq's modes; postgres.js would take any other word for one that verifies the certificate.
const SSL_MODES = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full']

function databaseUrl(value: string): string {
	const parsed = new URL(url('DATABASE_URL', value, ['postgres:', 'postgresql:']))
	// postgres.js splits hosts at ':' and would look up "[" as a host name, forever.
	if (parsed.hostname.startsWith('['))
		throw new ConfigError('DATABASE_URL cannot name an IPv6 address in brackets; use a host name that resolves to it.')
	const mode = parsed.searchParams.get('sslmode')
	if (mode !== null && !SSL_MODES.includes(mode))
		throw new ConfigError(`DATABASE_URL's sslmode must be one of ${SSL_MODES.join(', ')}, not "${mode}".`)
	return value
}

function origin(value: string): string {
	const parsed = url('CORS_ORIGINS', value, ['http:', 'https:'])
	return new URL(parsed).origin
}

const text = (value: string | undefined) => (value?.trim() ? value.trim() : undefined)

export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
	const secret = env.BETTER_AUTH_SECRET || undefined
	const authUrl = text(env.BETTER_AUTH_URL)
	if (!secret && !authUrl)
		throw new ConfigError('BETTER_AUTH_SECRET is required (or BETTER_AUTH_URL for JWKS tokens).')
	if (secret && Buffer.byteLength(secret) < MIN_SECRET_BYTES)
		throw new ConfigError(`BETTER_AUTH_SECRET must be at least ${MIN_SECRET_BYTES} bytes long.`)
	if (secret && !secret.trim()) throw new ConfigError('BETTER_AUTH_SECRET is only white space.')
	const database = text(env.DATABASE_URL)
	const workerSetting = text(env.WORKERS)
	const corsOrigins = (text(env.CORS_ORIGINS) ?? 'http://localhost:3000')
		.split(',')
		.map((o) => o.trim())
		.filter(Boolean)
		.map(origin)
	if (corsOrigins.length === 0) throw new ConfigError('CORS_ORIGINS names no origin.')
	return {
		secret,
		authUrl: authUrl && url('BETTER_AUTH_URL', authUrl, ['http:', 'https:']),
		issuer: text(env.JWT_ISSUER),
		audience: text(env.JWT_AUDIENCE),
		databaseUrl: database && databaseUrl(database),
		dataDir: text(env.DATA_DIR) ?? './data',
		port: port(text(env.PORT) ?? '8000'),
		host: text(env.HOST) ?? '0.0.0.0',
		corsOrigins,
		workers: workerSetting === undefined ? undefined : workers(workerSetting)
	}
}
