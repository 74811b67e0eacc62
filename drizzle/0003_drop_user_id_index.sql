-- The index on (user_id, created_at, id) serves every read by user (src/tasks/table.ts).
DROP INDEX IF EXISTS "tasks_user_id_idx";
