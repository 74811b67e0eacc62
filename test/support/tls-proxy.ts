import { spawnSync } from 'bun'
import { readFileSync } from 'node:fs'
import { type AddressInfo, connect, createServer } from 'node:net'
import { join } from 'node:path'
import { TLSSocket } from 'node:tls'
import { onLoopbackPort } from './app'
import { temporaryFolder } from './binary'

// The first message of a client that asks for TLS: its length, 8, then this code.
const SSL_REQUEST = 80_877_103

export interface TlsProxy {
	/** The certificate it presents, self-signed for 127.0.0.1: no authority a client trusts signed it. */
	certificate: string
	/** How many TLS sessions clients have opened through it. */
	readonly sessions: number
	/** The run's database URL, through the proxy. */
	url: string
	close(): void
}

/** Whether openssl is here to make the proxy's certificate. */
export const canMakeCertificates = spawnSync(['openssl', 'version']).exitCode === 0

/**
 * Postgres with TLS, for a run whose server has none: a loopback proxy that answers the client's
 * request for TLS, ends TLS itself, and passes what it reads on to the run's Postgres in plain.
 */
export async function startTlsProxy(databaseUrl: string): Promise<TlsProxy> {
	const folder = temporaryFolder('tls-')
	const [keyFile, certificate] = [join(folder, 'key.pem'), join(folder, 'certificate.pem')]
	const generated = spawnSync([
		'openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
		'-keyout', keyFile, '-out', certificate, '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'
	])
	if (generated.exitCode !== 0) throw new Error(`openssl: ${generated.stderr.toString()}`)
	const key = readFileSync(keyFile)
	const cert = readFileSync(certificate)
	const target = new URL(databaseUrl)
	let sessions = 0
	const server = createServer((client) => {
		client.once('data', (first: Buffer) => {
			if (first.length !== 8 || first.readInt32BE(4) !== SSL_REQUEST) return client.destroy()
			client.write('S')
			const tls = new TLSSocket(client, { isServer: true, key, cert })
			const upstream = connect(Number(target.port || 5432), target.hostname)
			tls.once('secure', () => sessions++)
			tls.pipe(upstream).pipe(tls)
			tls.on('error', () => upstream.destroy())
			upstream.on('error', () => tls.destroy())
		})
		client.on('error', () => {})
	})
	await new Promise<void>((listening) => server.listen(0, '127.0.0.1', listening))
	const { port } = server.address() as AddressInfo
	return {
		certificate,
		get sessions() {
			return sessions
		},
		url: onLoopbackPort(databaseUrl, port),
		close: () => server.close()
	}
}
