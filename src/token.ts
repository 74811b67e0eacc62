import { parseArgs } from 'node:util'
import { SignJWT } from 'jose'
import { ConfigError, loadConfig } from './config'

export class UsageError extends Error {}

function options(args: string[]): { sub?: string; ttl?: string } {
	try {
		return parseArgs({ args, options: { sub: { type: 'string' }, ttl: { type: 'string' } }, strict: true }).values
	} catch (error) {
		// parseArgs explains over several lines; the CLI prints one.
		const reason = (error instanceof Error ? error.message : String(error)).split('\n')[0]?.replace(/\.$/, '')
		throw new UsageError(`${reason} (usage: token --sub USER_ID [--ttl 1h]).`)
	}
}

/** `todo-api token --sub ID [--ttl T]`: prints an HS256 token signed with BETTER_AUTH_SECRET. */
export async function tokenCommand(args: string[]): Promise<void> {
	const { sub, ttl = '1h' } = options(args)
	if (!sub?.trim()) throw new UsageError('token needs --sub USER_ID.')
	if (!/^[1-9]\d*[smhd]$/.test(ttl)) throw new UsageError(`--ttl must look like 90s, 15m, 1h or 7d, not "${ttl}".`)
	const { secret } = loadConfig()
	if (!secret) throw new ConfigError('token needs BETTER_AUTH_SECRET.')
	const jwt = await new SignJWT({ sub })
		.setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
		.setIssuedAt()
		.setExpirationTime(ttl)
		.sign(new TextEncoder().encode(secret))
	console.log(jwt)
}
