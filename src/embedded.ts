import { PGlite } from '@electric-sql/pglite'
import initdbPath from '@electric-sql/pglite/initdb.wasm' with { type: 'file' }
import dataPath from '@electric-sql/pglite/pglite.data' with { type: 'file' }
import wasmPath from '@electric-sql/pglite/pglite.wasm' with { type: 'file' }
import { dlopen, FFIType } from 'bun:ffi'
import { closeSync, ftruncateSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs'
import { join, resolve } from 'node:path'

export class DataDirLocked extends Error {}

const LOCK_EXCLUSIVE = 2
const LOCK_NONBLOCKING = 4

// flock(2) from the C library. The kernel drops such a lock the moment its process dies, however it
// dies, so a crash leaves no stale lock and a reused pid cannot hold one; two processes that start at
// the same instant cannot both get it. Node's fs has no way to take one.
function loadFlock(): (fd: number, operation: number) => number {
	for (const library of ['libc.so.6', 'libc.so', 'libc.dylib'])
		try {
			return dlopen(library, { flock: { args: [FFIType.i32, FFIType.i32], returns: FFIType.i32 } }).symbols.flock
		} catch {
			// Not this platform's name for it: try the next.
		}
	throw new DataDirLocked('Cannot lock DATA_DIR: no C library with flock(2) was found.')
}

const inUse = (dir: string, owner: string) =>
	new DataDirLocked(
		`${resolve(dir)} is in use by another todo-api (pid ${owner || 'unknown'}); one process per DATA_DIR.`
	)

// PGlite does not lock its folder and two processes on one folder corrupt it, so the folder holds
// todo-api.lock, locked while a todo-api uses the folder and naming its pid for the error message.
// The file stays when the lock is released: removing it could let a third process lock a new file
// while a second still waits on the old one.
function lockDataDir(dir: string): () => void {
	const file = join(dir, 'todo-api.lock')
	const flock = loadFlock()
	const fd = openSync(file, 'a+')
	if (flock(fd, LOCK_EXCLUSIVE | LOCK_NONBLOCKING) !== 0) {
		closeSync(fd)
		throw inUse(dir, readFileSync(file, 'utf8').trim())
	}
	ftruncateSync(fd)
	writeSync(fd, String(process.pid))
	return () => closeSync(fd)
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
