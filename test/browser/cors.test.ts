// CORS as a real browser enforces it: Debian's Chromium driven by playwright-core loads a page
// from an allowed origin and from another one, and each calls the API with a bearer token.
import { afterAll, describe, expect, test } from 'bun:test'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium } from 'playwright-core'
import { createApp } from '../../src/app'
import { createVerifier } from '../../src/auth'
import { silentLog } from '../../src/log'
import { call, newUser, SECRET, sign, testDatabase } from '../support/app'

const CHROMIUM = '/usr/bin/chromium'
if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: install Debian's package (apt-get install -y chromium)`)

interface Listed {
	created: number
	location: string | null
	listed: number
	total: string | null
	requestId: string | null
	tasks: { title: string; user_id: string }[]
}
type Outcome<T> = T | { error: string }
// The functions test/browser/page.html defines.
interface PageScript {
	createAndList(api: string, token: string): Promise<Outcome<Listed>>
	health(api: string): Promise<Outcome<{ status: number }>>
}

const pageServer = () =>
	Bun.serve({ hostname: '127.0.0.1', port: 0, fetch: () => new Response(Bun.file(join(import.meta.dir, 'page.html'))) })
const allowedPages = pageServer()
const otherPages = pageServer()
const allowed = `http://127.0.0.1:${allowedPages.port}`
const other = `http://127.0.0.1:${otherPages.port}`

// The API as main builds it, with CORS_ORIGINS set to exactly the allowed page's origin.
const app = createApp({ database: await testDatabase(), verify: createVerifier({ secret: SECRET }), config: { corsOrigins: [allowed] }, log: silentLog })
const preflights: string[] = []
const api = Bun.serve({
	hostname: '127.0.0.1',
	port: 0,
	fetch(request) {
		if (request.method === 'OPTIONS') preflights.push(request.headers.get('origin') ?? '')
		return app.handle(request)
	}
})
const apiUrl = `http://127.0.0.1:${api.port}`

const profile = mkdtempSync(join(tmpdir(), 'todo-chromium-'))
const browser = await chromium.launchPersistentContext(profile, {
	executablePath: CHROMIUM,
	headless: true,
	args: [
		'--no-sandbox',
		'--disable-gpu',
		'--disable-background-networking',
		'--disable-component-update',
		'--disable-sync',
		'--no-first-run'
	]
})

afterAll(async () => {
	await browser.close()
	rmSync(profile, { recursive: true, force: true })
	await Promise.all([allowedPages.stop(true), otherPages.stop(true), api.stop(true)])
})

async function openPage(origin: string) {
	const page = await browser.newPage()
	await page.goto(`${origin}/`)
	return page
}

describe('CORS in Chromium', () => {
	test('a page of an allowed origin calls the API through a preflight and reads the exposed headers', async () => {
		const sub = newUser()
		const page = await openPage(allowed)
		const outcome = await page.evaluate(
			([base, token]) => (globalThis as unknown as PageScript).createAndList(base, token),
			[apiUrl, await sign({ sub })] as const
		)
		await page.close()

		expect(outcome).toMatchObject({ created: 201, listed: 200, total: '1', tasks: [{ title: 'From the browser', user_id: sub }] })
		const listed = outcome as Listed
		expect(listed.location).toMatch(/^\/api\/tasks\/\d+$/)
		expect(listed.requestId).toBeTruthy()
		expect(preflights).toContain(allowed)
	})

	test('the same page from another origin is blocked by the browser, and nothing is written', async () => {
		const sub = newUser()
		const token = await sign({ sub })
		const page = await openPage(other)
		const blocked = await page.evaluate(
			([base, bearer]) => (globalThis as unknown as PageScript).createAndList(base, bearer),
			[apiUrl, token] as const
		)
		const health = await page.evaluate((base) => (globalThis as unknown as PageScript).health(base), apiUrl)
		await page.close()

		expect(blocked).toEqual({ error: expect.stringContaining('Failed to fetch') })
		expect(health).toEqual({ error: expect.stringContaining('Failed to fetch') })
		expect(preflights).toContain(other)
		expect((await call(app, 'GET', '/api/tasks', { token })).body).toEqual([])
	})
})
