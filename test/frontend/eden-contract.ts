// Compiled by `tsc --noEmit`, never run: it pins the types Eden gives the frontend to the contract,
// so a route whose body or response type drifts fails the type check.
import { treaty } from '@elysiajs/eden'
import type { App } from 'todo-api/src/app'

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false
const same = <A, B>(_proof: Equal<A, B>) => {}

interface Task {
	id: number
	user_id: string
	title: string
	description: string | null
	completed: boolean
	created_at: string
	updated_at: string
}
interface TaskInput {
	title: string
	description?: string | null
	completed?: boolean
}
interface ErrorBody {
	detail: string
	error_code: string
}

const api = treaty<App>('http://localhost:8000')
const task = api.api.tasks({ id: 1 })
type Data<F extends (...args: never[]) => Promise<{ data: unknown }>> = NonNullable<Awaited<ReturnType<F>>['data']>
type ErrorOf<F extends (...args: never[]) => Promise<{ error: unknown }>> = NonNullable<Awaited<ReturnType<F>>['error']>

same<Data<typeof api.api.tasks.get>, Task[]>(true)
same<Data<typeof api.api.tasks.post>, Task>(true)
same<Data<typeof task.get>, Task>(true)
same<Data<typeof task.put>, Task>(true)
same<Data<typeof task.complete.patch>, Task>(true)
same<Data<typeof api.health.get>, { status: 'ok' }>(true)
same<Data<typeof api.ready.get>, { status: 'ready' }>(true)
same<ErrorOf<typeof task.get>['value'], ErrorBody>(true)

same<Parameters<typeof api.api.tasks.post>[0], TaskInput>(true)
same<Parameters<typeof task.put>[0], TaskInput>(true)
same<Parameters<typeof task.complete.patch>[0], { completed: boolean }>(true)

export async function wrongCalls() {
	// @ts-expect-error title must be a string
	await api.api.tasks.post({ title: 1 })
	// @ts-expect-error title is required
	await api.api.tasks.post({ description: 'no title' })
	// @ts-expect-error completed is a boolean, not "yes"
	await api.api.tasks.post({ title: 'x', completed: 'yes' })
	// @ts-expect-error description is a string or null
	await task.put({ title: 'x', description: 42 })
	// @ts-expect-error completed is required to mark a task
	await task.complete.patch({})
	// @ts-expect-error limit is a number
	await api.api.tasks.get({ query: { limit: 'ten' } })
	// @ts-expect-error there is no such sort column
	await api.api.tasks.get({ query: { sort: 'priority' } })
	const created = await api.api.tasks.post({ title: 'x' })
	// @ts-expect-error a task's title is a string
	const title: number | undefined = created.data?.title
	return title
}
