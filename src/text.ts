/**
 * Whether Postgres stores this text as sent: its text type cannot hold NUL, and a lone surrogate
 * would be written as U+FFFD, so such text could not be given back, nor told apart from another.
 */
export const storableText = (value: string): boolean => value.isWellFormed() && !value.includes('\0')
