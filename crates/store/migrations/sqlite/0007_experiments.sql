-- Tasks taking part in a model experiment: the arm they were assigned
-- (sticky per issue), and the late outcomes Issue webhooks bring (the issue
-- reached a completed state; it was reopened after that). Everything else
-- an experiment reports is read from the task itself.
CREATE TABLE experiment_tasks (
    task_id      TEXT PRIMARY KEY NOT NULL,
    experiment   TEXT NOT NULL,
    arm          TEXT NOT NULL,
    model        TEXT NOT NULL,
    issue_id     TEXT NOT NULL,
    assigned_at  INTEGER NOT NULL,
    completed_at INTEGER,
    reopened_at  INTEGER
);
CREATE INDEX experiment_tasks_experiment ON experiment_tasks (experiment, assigned_at);
CREATE INDEX experiment_tasks_issue ON experiment_tasks (issue_id);
