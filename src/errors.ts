// Every failure the API reports, one class per meaning. The onError hook in app.ts is the single
// place that turns them, and whatever else is thrown (toApiError), into `{detail, error_code}`.
export class ApiError extends Error {
	constructor(
		readonly status: number,
		readonly code: string,
		detail: string
	) {
		super(detail)
	}
}

export class AuthenticationRequired extends ApiError {
	constructor(detail = 'A valid bearer token is required.') {
		super(401, 'AUTHENTICATION_REQUIRED', detail)
	}
}

export class ResourceNotFound extends ApiError {
	constructor(detail = 'Task not found.') {
		super(404, 'RESOURCE_NOT_FOUND', detail)
	}
}

export class ValidationFailed extends ApiError {
	constructor(detail: string) {
		super(422, 'VALIDATION_ERROR', detail)
	}
}

export class PayloadTooLarge extends ApiError {
	constructor(limit: number) {
		super(413, 'PAYLOAD_TOO_LARGE', `The request body is larger than ${limit} bytes.`)
	}
}

export class RouteNotFound extends ApiError {
	constructor() {
		super(404, 'NOT_FOUND', 'No such route.')
	}
}

export class MethodNotAllowed extends ApiError {
	constructor(readonly allow: string[]) {
		super(405, 'METHOD_NOT_ALLOWED', `This route allows ${allow.join(', ')}.`)
	}
}

export class ServiceUnavailable extends ApiError {
	constructor(detail = 'The database is unavailable; try again shortly.') {
		super(503, 'SERVICE_UNAVAILABLE', detail)
	}
}

export class InternalError extends ApiError {
	constructor() {
		super(500, 'INTERNAL_ERROR', 'An unexpected error occurred.')
	}
}
