import { PGlite } from '@electric-sql/pglite'
import initdbPath from '@electric-sql/pglite/initdb.wasm' with { type: 'file' }
import dataPath from '@electric-sql/pglite/pglite.data' with { type: 'file' }
import wasmPath from '@electric-sql/pglite/pglite.wasm' with { type: 'file' }
import { closeSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs'
import { join, resolve } from 'node:path'

export class DataDirLocked extends Error {}

// PGlite does not lock its folder and two processes on one folder corrupt it, so the folder
// holds a lock file naming its owner's pid. A lock whose owner is gone (a crash) is taken over.
function lockDataDir(dir: string): () => void {
	const file = join(dir, 'todo-api.lock')
	for (let attempt = 0; attempt < 2; attempt++) {
		try {
			const fd = openSync(file, 'wx')
			writeSync(fd, String(process.pid))
			closeSync(fd)
			return () => unlinkSync(file)
		} catch (error) {
			if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
			const owner = Number(readFileSync(file, 'utf8'))
			if (owner && owner !== process.pid && isAlive(owner))
				throw new DataDirLocked(
					`${resolve(dir)} is in use by another todo-api (pid ${owner}); one process per DATA_DIR.`
				)
			unlinkSync(file)
		}
	}
	throw new DataDirLocked(`Could not lock ${resolve(dir)}.`)
}

function isAlive(pid: number): boolean {
	try {
		process.kill(pid, 0)
		return true
	} catch (error) {
		return (error as NodeJS.ErrnoException).code === 'EPERM'
	}
}

// The wasm and data files are imported as files so `bun build --compile` embeds them;
// PGlite's own lookup next to its module fails inside a compiled binary.
export async function openEmbedded(dir: string): Promise<{ client: PGlite; unlock: () => void }> {
	mkdirSync(dir, { recursive: true })
	const unlock = lockDataDir(dir)
	try {
		const [pgliteWasmModule, initdbWasmModule] = await Promise.all(
			[wasmPath, initdbPath].map(async (path) => WebAssembly.compile(await Bun.file(path).arrayBuffer()))
		)
		const client = await PGlite.create(join(dir, 'pgdata'), {
			pgliteWasmModule,
			initdbWasmModule,
			fsBundle: Bun.file(dataPath)
		})
		return { client, unlock }
	} catch (error) {
		unlock()
		throw error
	}
}
