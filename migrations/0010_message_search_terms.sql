-- Message search matches terms the messages projection computes (projections/src/search.rs)
-- instead of a `to_tsvector` index expression, which Postgres evaluated for every message
-- written and which cost more than the rest of the row.
--
-- Existing rows start without terms; the messages projection's version 2 rebuilds the table in
-- the shadow schema with them and swaps it in, while the live table keeps serving.
alter table messages add column search_terms text[] not null default '{}';
drop index messages_to_tsvector_idx;
create index on messages using gin (search_terms);
