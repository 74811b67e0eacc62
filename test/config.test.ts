import { describe, expect, test } from 'bun:test'
import { type Config, ConfigError, loadConfig } from '../src/config'

const SECRET = 's'.repeat(32)

function refused(env: Record<string, string | undefined>, mentioning: string) {
	let error: unknown
	try {
		loadConfig(env)
	} catch (caught) {
		error = caught
	}
	expect(error).toBeInstanceOf(ConfigError)
	const message = (error as Error).message
	expect(message).toContain(mentioning)
	expect(message).not.toContain('\n')
	expect(message.length).toBeGreaterThan(10)
}

describe('Running it: settings', () => {
	describe('BETTER_AUTH_SECRET', () => {
		test('missing, with no BETTER_AUTH_URL: refused', () => {
			refused({}, 'BETTER_AUTH_SECRET')
			refused({ BETTER_AUTH_SECRET: '' }, 'BETTER_AUTH_SECRET')
		})

		test('shorter than 32 bytes: refused', () => {
			refused({ BETTER_AUTH_SECRET: 's'.repeat(31) }, 'BETTER_AUTH_SECRET')
			refused({ BETTER_AUTH_SECRET: 'short' }, 'BETTER_AUTH_SECRET')
		})

		test('32 bytes or more: accepted and kept as given', () => {
			expect(loadConfig({ BETTER_AUTH_SECRET: SECRET }).secret).toBe(SECRET)
			const long = `${'x'.repeat(100)} with spaces `
			expect(loadConfig({ BETTER_AUTH_SECRET: long }).secret).toBe(long)
		})

		test('length counts bytes, not characters', () => {
			// 16 two-byte characters are 32 bytes; 15 of them and one ASCII character are 31.
			expect(loadConfig({ BETTER_AUTH_SECRET: 'é'.repeat(16) }).secret).toBe('é'.repeat(16))
			refused({ BETTER_AUTH_SECRET: `${'é'.repeat(15)}a` }, 'BETTER_AUTH_SECRET')
			// 8 four-byte emoji: 16 UTF-16 units but 32 bytes.
			expect(loadConfig({ BETTER_AUTH_SECRET: '😀'.repeat(8) }).secret).toBe('😀'.repeat(8))
			refused({ BETTER_AUTH_SECRET: '😀'.repeat(7) }, 'BETTER_AUTH_SECRET')
			refused({ BETTER_AUTH_SECRET: 'é'.repeat(11) }, 'BETTER_AUTH_SECRET')
		})

		test('only white space, however long: refused', () => {
			refused({ BETTER_AUTH_SECRET: ' '.repeat(40) }, 'BETTER_AUTH_SECRET')
			refused({ BETTER_AUTH_SECRET: '\t\n '.repeat(20) }, 'BETTER_AUTH_SECRET')
		})

		test('not required when BETTER_AUTH_URL is set', () => {
			const config = loadConfig({ BETTER_AUTH_URL: 'https://auth.example.com' })
			expect(config.secret).toBeUndefined()
			expect(config.authUrl).toBe('https://auth.example.com')
		})
	})

	describe('URLs', () => {
		test('an unparsable BETTER_AUTH_URL: refused', () => {
			for (const value of ['not a url', 'auth.example.com', 'http//missing-colon', 'ftp://auth.example.com'])
				refused({ BETTER_AUTH_SECRET: SECRET, BETTER_AUTH_URL: value }, 'BETTER_AUTH_URL')
		})

		test('an unparsable DATABASE_URL: refused', () => {
			for (const value of ['not a url', 'localhost:5432/db', 'http://localhost/db', 'mysql://localhost/db'])
				refused({ BETTER_AUTH_SECRET: SECRET, DATABASE_URL: value }, 'DATABASE_URL')
		})

		test('an IPv6 address in brackets, which postgres.js cannot reach: refused', () => {
			refused({ BETTER_AUTH_SECRET: SECRET, DATABASE_URL: 'postgres://root@[::1]:5432/db' }, 'IPv6')
		})

		test("an sslmode libpq does not know: refused; libpq's six are accepted", () => {
			for (const mode of ['bogus', 'no-verify', 'true', 'REQUIRE'])
				refused({ BETTER_AUTH_SECRET: SECRET, DATABASE_URL: `postgres://h/db?sslmode=${mode}` }, 'sslmode')
			for (const mode of ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'])
				expect(loadConfig({ BETTER_AUTH_SECRET: SECRET, DATABASE_URL: `postgres://h/db?sslmode=${mode}` }).databaseUrl).toContain(mode)
		})

		test('postgres:// and postgresql:// are accepted as given', () => {
			for (const url of ['postgres://user:pw@db.example.com:5432/todo', 'postgresql://user@localhost/todo?sslmode=require'])
				expect(loadConfig({ BETTER_AUTH_SECRET: SECRET, DATABASE_URL: url }).databaseUrl).toBe(url)
		})
	})

	describe('PORT', () => {
		test('not a port: refused', () => {
			for (const value of ['abc', '-1', '65536', '80.5', '8000abc', '1e3', '99999999'])
				refused({ BETTER_AUTH_SECRET: SECRET, PORT: value }, 'PORT')
		})

		test('0 to 65535 accepted', () => {
			for (const port of [0, 1, 8080, 65535]) expect(loadConfig({ BETTER_AUTH_SECRET: SECRET, PORT: String(port) }).port).toBe(port)
		})
	})

	test('defaults: embedded database in ./data, 0.0.0.0:8000, CORS from http://localhost:3000', () => {
		const config = loadConfig({ BETTER_AUTH_SECRET: SECRET })
		expect(config).toMatchObject({
			databaseUrl: undefined,
			authUrl: undefined,
			dataDir: './data',
			port: 8000,
			host: '0.0.0.0',
			corsOrigins: ['http://localhost:3000']
		})
	})

	// The whole Config, typed as one: a setting added to Config and not to this test fails to compile.
	test('every setting is read', () => {
		const config = loadConfig({
			BETTER_AUTH_SECRET: SECRET,
			BETTER_AUTH_URL: 'https://auth.example.com',
			JWT_ISSUER: 'https://issuer.example.com',
			JWT_AUDIENCE: 'todo-api',
			DATABASE_URL: 'postgres://root@localhost:5432/todo',
			DATA_DIR: 'some/folder',
			PORT: '9000',
			HOST: '127.0.0.1',
			CORS_ORIGINS: 'https://app.example.com',
			WORKERS: '4'
		})
		const expected: Config = {
			secret: SECRET,
			authUrl: 'https://auth.example.com',
			issuer: 'https://issuer.example.com',
			audience: 'todo-api',
			databaseUrl: 'postgres://root@localhost:5432/todo',
			dataDir: 'some/folder',
			port: 9000,
			host: '127.0.0.1',
			corsOrigins: ['https://app.example.com'],
			workers: 4
		}
		expect(config).toEqual(expected)
	})

	describe('CORS_ORIGINS: comma-separated allowed origins', () => {
		test('split on commas, spaces around them ignored', () => {
			const CORS_ORIGINS = 'http://a.example, https://b.example:8443 ,http://localhost:5173'
			const config = loadConfig({ BETTER_AUTH_SECRET: SECRET, CORS_ORIGINS })
			expect(config.corsOrigins).toEqual(['http://a.example', 'https://b.example:8443', 'http://localhost:5173'])
		})

		test('empty items are skipped', () => {
			const config = loadConfig({ BETTER_AUTH_SECRET: SECRET, CORS_ORIGINS: 'http://a.example,,http://b.example,' })
			expect(config.corsOrigins).toEqual(['http://a.example', 'http://b.example'])
		})

		test('an origin written with a trailing slash matches the browser`s Origin header', () => {
			const config = loadConfig({ BETTER_AUTH_SECRET: SECRET, CORS_ORIGINS: 'https://app.example.com/' })
			expect(config.corsOrigins).toEqual(['https://app.example.com'])
		})

		test('an item that is not a URL: refused', () => {
			refused({ BETTER_AUTH_SECRET: SECRET, CORS_ORIGINS: 'http://a.example,not a url' }, 'CORS_ORIGINS')
			refused({ BETTER_AUTH_SECRET: SECRET, CORS_ORIGINS: 'app.example.com' }, 'CORS_ORIGINS')
		})

		test('commas and no origin: refused, not read as none allowed', () => {
			refused({ BETTER_AUTH_SECRET: SECRET, CORS_ORIGINS: ',,,' }, 'CORS_ORIGINS')
			refused({ BETTER_AUTH_SECRET: SECRET, CORS_ORIGINS: ' , ' }, 'CORS_ORIGINS')
		})
	})
})
