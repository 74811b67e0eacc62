import { SignJWT } from 'jose'
import { ConfigError, loadConfig } from './config'

export class UsageError extends Error {}

/** `todo-api token --sub ID [--ttl T]`: prints an HS256 token signed with BETTER_AUTH_SECRET. */
export async function tokenCommand(args: string[]): Promise<void> {
	const option = (name: string) => {
		const at = args.indexOf(name)
		return at === -1 ? undefined : args[at + 1]
	}
	const sub = option('--sub')
	const ttl = option('--ttl') ?? '1h'
	if (!sub) throw new UsageError('token needs --sub USER_ID.')
	if (!/^\d+[smhd]$/.test(ttl)) throw new UsageError(`--ttl must look like 90s, 15m, 1h or 7d, not "${ttl}".`)
	const { secret } = loadConfig()
	if (!secret) throw new ConfigError('token needs BETTER_AUTH_SECRET.')
	const jwt = await new SignJWT({ sub })
		.setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
		.setIssuedAt()
		.setExpirationTime(ttl)
		.sign(new TextEncoder().encode(secret))
	console.log(jwt)
}
