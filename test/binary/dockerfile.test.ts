import { describe, expect, test } from 'bun:test'
import { cpSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { databaseUrl } from '../support/app'
import { ROOT, SLOW, temporaryFolder } from '../support/binary'

// The Dockerfile's stages, in order: each the instructions after its FROM, split into words, with
// continued lines joined.
function stages(): string[][][] {
	const text = readFileSync(join(ROOT, 'Dockerfile'), 'utf8').replace(/\\\n\s*/g, ' ')
	return text
		.split(/^FROM .*$/m)
		.slice(1)
		.map((stage) => stage.split('\n').filter((line) => /^[A-Z]+ /.test(line)).map((line) => line.split(/\s+/)))
}

// No Docker daemon or base image here, so the build stage's own COPY and RUN lines are replayed
// in an empty folder standing for its WORKDIR: a file that `bun install --frozen-lockfile` or the
// build reads but the Dockerfile does not copy fails here as it would in `docker build`.
function buildStage(): string[][] {
	const [stage = []] = stages()
	return stage.filter(([instruction]) => instruction === 'COPY' || instruction === 'RUN')
}

// The arguments of every `instruction` line of the image's own stage, the last one.
function inTheImage(instruction: string): string[] {
	return (stages().at(-1) ?? []).filter(([name]) => name === instruction).flatMap(([, ...args]) => args)
}

// Whether .dockerignore lets a top-level path into the build context. It uses "*" and "!name"
// only, where the last line that matches decides; a line of any other form fails the test.
function inBuildContext(path: string): boolean {
	let included = true
	for (const line of readFileSync(join(ROOT, '.dockerignore'), 'utf8').split('\n')) {
		const pattern = line.trim()
		if (!pattern || pattern.startsWith('#')) continue
		const negated = pattern.startsWith('!')
		const name = pattern.slice(negated ? 1 : 0).replace(/\/$/, '')
		if (name !== '*' && /[*?[\]/]/.test(name)) throw new Error(`.dockerignore: "${pattern}" is not a form this test reads`)
		if (name === '*' || name === path) included = negated
	}
	return included
}

// The same on either database: it runs once, with the PGlite half.
describe.if(!databaseUrl)('Building it: the Dockerfile’s build stage', () => {
	test('its COPY lines bring in all that its install and build read', async () => {
		const steps = buildStage()
		expect(steps.map(([instruction]) => instruction)).toContain('RUN')
		const workdir = temporaryFolder('docker-build-')
		for (const [instruction, ...args] of steps) {
			if (instruction === 'COPY') {
				const target = args.pop() as string
				for (const source of args) {
					expect({ source, inBuildContext: inBuildContext(source) }).toEqual({ source, inBuildContext: true })
					cpSync(join(ROOT, source), join(workdir, target.endsWith('/') ? source : target), { recursive: true })
				}
				continue
			}
			const run = Bun.spawn(['sh', '-c', args.join(' ')], {
				cwd: workdir,
				// The image's `bun` is this one.
				env: { ...process.env, PATH: `${dirname(process.execPath)}:${process.env.PATH}` },
				stdout: 'ignore',
				stderr: 'pipe'
			})
			const [code, stderr] = await Promise.all([run.exited, new Response(run.stderr).text()])
			const step = args.join(' ')
			expect({ step, code, stderr: code === 0 ? '' : stderr }).toEqual({ step, code: 0, stderr: '' })
		}
	}, SLOW)
})

// The image itself cannot be built or run here (no base image can be pulled), so its last stage is
// read: the forms it uses (`USER uid:gid`, `ENV NAME=value`, `VOLUME /path`) are the ones checked.
describe.if(!databaseUrl)('Running it: the image the Dockerfile makes', () => {
	test('it runs as a non-root user, with DATA_DIR=/data on a volume', () => {
		const [user] = (inTheImage('USER').at(-1) ?? 'root').split(':')
		expect(['', '0', 'root']).not.toContain(user)
		expect(inTheImage('ENV')).toContain('DATA_DIR=/data')
		expect(inTheImage('VOLUME')).toContain('/data')
	})
})
