-- task_counts follows every change of tasks, in the same transaction, through statement-level
-- triggers (one aggregate per statement, however many rows it touched). Writers wait while the
-- counts are first filled in, so none is missed or counted twice.
LOCK TABLE "tasks" IN SHARE ROW EXCLUSIVE MODE;
--> statement-breakpoint
CREATE FUNCTION "task_counts_apply"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF TG_OP = 'INSERT' THEN
		INSERT INTO task_counts AS c (user_id, total, completed)
		SELECT user_id, count(*), count(*) FILTER (WHERE completed) FROM new_rows GROUP BY user_id
		ON CONFLICT (user_id) DO UPDATE SET total = c.total + excluded.total, completed = c.completed + excluded.completed;
	ELSIF TG_OP = 'DELETE' THEN
		UPDATE task_counts AS c SET total = c.total - d.total, completed = c.completed - d.completed
		FROM (SELECT user_id, count(*) AS total, count(*) FILTER (WHERE completed) AS completed FROM old_rows GROUP BY user_id) AS d
		WHERE c.user_id = d.user_id;
	ELSE
		INSERT INTO task_counts AS c (user_id, total, completed)
		SELECT user_id, sum(total), sum(completed) FROM (
			SELECT user_id, 1 AS total, completed::int AS completed FROM new_rows
			UNION ALL
			SELECT user_id, -1, -completed::int FROM old_rows
		) AS change
		GROUP BY user_id HAVING sum(total) <> 0 OR sum(completed) <> 0
		ON CONFLICT (user_id) DO UPDATE SET total = c.total + excluded.total, completed = c.completed + excluded.completed;
	END IF;
	RETURN NULL;
END $$;
--> statement-breakpoint
CREATE TRIGGER "task_counts_insert" AFTER INSERT ON "tasks" REFERENCING NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION "task_counts_apply"();
--> statement-breakpoint
CREATE TRIGGER "task_counts_delete" AFTER DELETE ON "tasks" REFERENCING OLD TABLE AS old_rows
	FOR EACH STATEMENT EXECUTE FUNCTION "task_counts_apply"();
--> statement-breakpoint
CREATE TRIGGER "task_counts_update" AFTER UPDATE ON "tasks" REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION "task_counts_apply"();
--> statement-breakpoint
INSERT INTO "task_counts" ("user_id", "total", "completed")
SELECT "user_id", count(*), count(*) FILTER (WHERE "completed") FROM "tasks" GROUP BY "user_id";
