/// <reference path="./assets.d.ts" />
import type { PGlite } from '@electric-sql/pglite'
import initdbPath from '@electric-sql/pglite/initdb.wasm' with { type: 'file' }
import dataPath from '@electric-sql/pglite/pglite.data' with { type: 'file' }
import wasmPath from '@electric-sql/pglite/pglite.wasm' with { type: 'file' }
import { dlopen, FFIType } from 'bun:ffi'
import { closeSync, existsSync, ftruncateSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { join, resolve } from 'node:path'

/** The lock on DATA_DIR cannot be taken: another todo-api holds it, or this system has no flock(2). */
export class CannotLockDataDir extends Error {}

const LOCK_EXCLUSIVE = 2
const LOCK_NONBLOCKING = 4

// flock(2) from the C library, by whichever name this platform gives it. The kernel drops such a
// lock the moment its process dies, however it dies, so a crash leaves no stale lock and a reused
// pid cannot hold one; two processes that start at the same instant cannot both get it. Node's fs
// has no way to take one.
function loadFlock(): (fd: number, operation: number) => number {
	for (const library of ['libc.so.6', 'libc.so', 'libc.dylib'])
		try {
			return dlopen(library, { flock: { args: [FFIType.i32, FFIType.i32], returns: FFIType.i32 } }).symbols.flock
		} catch {}
	throw new CannotLockDataDir('Cannot lock DATA_DIR: no C library with flock(2) was found.')
}

const inUse = (dir: string, owner: string) =>
	new CannotLockDataDir(
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

// Postgres's defaults are sized for a server of its own: 128 MB of shared buffers, which the wasm
// build zeroes at every start (about 150 ms of each start and 110 MiB of idle memory), and slots
// for 100 connections. One process holds this database through one connection; the OS page cache
// still keeps what does not fit in the buffers.
const SETTINGS = [
	'shared_buffers=16MB',
	'max_connections=4',
	'superuser_reserved_connections=0',
	'reserved_connections=0',
	'autovacuum_worker_slots=1',
	'max_wal_senders=0',
	'max_replication_slots=0'
].flatMap((setting) => ['-c', setting])

// initdb leaves about 400 MiB behind (its own wasm instances and their memory). Only a full
// collection gives it back, and an idle server runs none for about ten seconds: it would idle at
// 570 MiB instead of 190 until then. The runtime still holds it for a second or so after start-up
// (1-1.5 s here), so collect every quarter of a second for the first five.
const releaseInitdb = () => {
	for (let ms = 250; ms <= 5_000; ms += 250) setTimeout(() => Bun.gc(true), ms).unref()
}

const WASM_COMPILER_THREADS = 'BUN_JSC_numberOfWasmCompilerThreads'

/**
 * Compiling pglite.wasm (9 MB) is about 40 % of a start on PGlite, and JavaScriptCore compiles
 * wasm on one thread fewer than the cores: on one thread, on 2 cores. It reads that setting only
 * from the environment as the process starts, so this runs `command` (this program) again in
 * place, same pid, with one thread per core: on 2 cores the first answer on a reopened folder
 * comes about 45 ms sooner, a tenth of the start. A value set by the operator is kept; should the
 * exec fail, the start goes on as it is.
 */
export function compileWasmOnEveryCore(command: string[]): void {
	const cores = availableParallelism()
	const [file, ...args] = command
	if (process.env[WASM_COMPILER_THREADS] !== undefined || cores < 2 || !file) return
	try {
		process.execve?.(file, [file, ...args], { ...process.env, [WASM_COMPILER_THREADS]: String(cores) })
	} catch {
		// Not replaced: this process starts, on the default number of threads.
	}
}

const compile = async (path: string) => WebAssembly.compile(await Bun.file(path).arrayBuffer())

// The wasm and data files are imported as files so `bun build --compile` embeds them;
// PGlite's own lookup next to its module fails inside a compiled binary.
export async function openEmbedded(dir: string): Promise<{ client: PGlite; unlock: () => void }> {
	mkdirSync(dir, { recursive: true })
	const unlock = lockDataDir(dir)
	try {
		// Loaded here, not at start: a Postgres deployment never evaluates PGlite's code.
		const { PGlite } = await import('@electric-sql/pglite')
		const pgdata = join(dir, 'pgdata')
		const fresh = !existsSync(join(pgdata, 'PG_VERSION'))
		const [pgliteWasmModule, initdbWasmModule] = await Promise.all([
			compile(wasmPath),
			fresh ? compile(initdbPath) : undefined
		])
		const client = await PGlite.create(pgdata, {
			pgliteWasmModule,
			initdbWasmModule,
			fsBundle: Bun.file(dataPath),
			startParams: [...PGlite.defaultStartParams, ...SETTINGS]
		})
		if (fresh) releaseInitdb()
		return { client, unlock }
	} catch (error) {
		unlock()
		throw error
	}
}
