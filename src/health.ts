import { sql } from 'drizzle-orm'
import { Elysia, t } from 'elysia'
import type { Pools } from './database'
import { ServiceUnavailable } from './errors'
import { ErrorBody } from './tasks/model'

/** /health: the process runs (a liveness probe). /ready: the database answers (a readiness probe). */
export const healthRoutes = ({ writes }: Pick<Pools, 'writes'>) =>
	new Elysia({ detail: { tags: ['Health'] } })
		.get('/health', () => ({ status: 'ok' as const }), {
			response: t.Object({ status: t.Literal('ok') }),
			detail: { summary: 'The process is running' }
		})
		.get(
			'/ready',
			async () => {
				try {
					await writes.execute(sql`select 1`)
				} catch {
					throw new ServiceUnavailable()
				}
				return { status: 'ready' as const }
			},
			{
				response: { 200: t.Object({ status: t.Literal('ready') }), 503: ErrorBody },
				detail: { summary: 'The database answers' }
			}
		)
