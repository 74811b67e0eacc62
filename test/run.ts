// The test command: the type check, then the whole suite on the embedded PGlite, and again on
// Postgres when TEST_DATABASE_URL names one (CI always does). Extra arguments go to `bun test`.
// The timeout is a flag because Bun 1.4 ignores bunfig's [test] timeout; migrating a fresh PGlite
// and starting compiled binaries take seconds.
import { spawn } from 'bun'

const args = Bun.argv.slice(2)
const runs: [string, Record<string, string | undefined>][] = [['PGlite', { TEST_DATABASE_URL: '' }]]
if (process.env.TEST_DATABASE_URL) runs.push(['Postgres', {}])
else console.warn('\n!! TEST_DATABASE_URL is not set: the Postgres half of the suite is NOT run.\n')

// bun test runs TypeScript without checking its types: the check comes first. (The frontend's
// types, which see the app through Eden, are checked by eden.test.ts.)
console.log('\n=== tsc --noEmit ===')
if ((await spawn([process.execPath, 'x', 'tsc', '--noEmit', '-p', '.'], { stdio: ['inherit', 'inherit', 'inherit'] }).exited) !== 0) {
	console.log('\nthe types do not check: no test was run')
	process.exit(1)
}

// Passes the output through while keeping bun test's closing counts.
async function relay(stream: ReadableStream<Uint8Array>, to: NodeJS.WriteStream): Promise<string> {
	let text = ''
	for await (const chunk of stream) {
		to.write(chunk)
		text += new TextDecoder().decode(chunk)
	}
	return text
}

const count = (output: string, word: string) =>
	Number([...output.matchAll(new RegExp(`^\\s*(\\d+) ${word}$`, 'gm'))].at(-1)?.[1] ?? 0)

let passed = 0
let failed = 0
let broken = false
for (const [name, env] of runs) {
	console.log(`\n=== bun test on ${name} ===`)
	const run = spawn([process.execPath, 'test', '--timeout', '60000', ...args], {
		env: { ...process.env, ...env },
		stdio: ['inherit', 'pipe', 'pipe']
	})
	const [out, err] = await Promise.all([relay(run.stdout, process.stdout), relay(run.stderr, process.stderr)])
	if ((await run.exited) !== 0) broken = true
	passed += count(out + err, 'pass')
	failed += count(out + err, 'fail')
}
console.log(`\n${passed} passed, ${failed} failed`)
process.exit(broken || failed > 0 ? 1 : 0)
