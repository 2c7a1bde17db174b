-- The ticket list's indexes on an assignee, a category or tags hold only the tickets that have
-- one. Many tickets have none (a new ticket waits unassigned; a team may use no categories or
-- tags), and every reply rewrites a ticket's row, and with it an entry in every index whose
-- condition the row meets. The queries these indexes serve name a value (`assignee_id = $1`,
-- `category_id = any($1)`, `tags @> …`), which implies the condition, so they still use them.
-- The tag filter says `tags <> '{}'` as well, which the planner cannot infer from `@>`.
drop index tickets_assignee_id_last_activity_at_idx;
create index on tickets (assignee_id, last_activity_at desc) where assignee_id is not null;
drop index tickets_category_id_last_activity_at_idx;
create index on tickets (category_id, last_activity_at desc) where category_id is not null;
drop index tickets_tags_idx;
create index on tickets using gin (tags) where tags <> '{}';
