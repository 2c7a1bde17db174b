-- The append fast path: cheaper per-event work on the server, same guarantees.
--
-- 1. event_hash keeps its exact definition (sha256 over the previous hash and the
--    length-prefixed UTF-8 of the event type, the payload and the metadata), rewritten as one
--    expression without a FROM clause and declared STABLE (convert_to is stable). Postgres can
--    then inline it into the statement that calls it instead of running a SQL-function
--    executor per event: the single-event append statement of eventlog/src/postgres.rs and
--    append_events both call it. Hashes of existing rows are unchanged (the test
--    `each_stream_carries_a_sha256_hash_chain` recomputes them in Rust).
create or replace function event_hash(prev bytea, event_type text, payload text, metadata text)
returns bytea
language sql stable parallel safe as $$
    select sha256(coalesce(prev, ''::bytea)
                  || int4send(octet_length(convert_to(event_type, 'UTF8')))
                  || convert_to(event_type, 'UTF8')
                  || int4send(octet_length(convert_to(payload, 'UTF8')))
                  || convert_to(payload, 'UTF8')
                  || int4send(octet_length(convert_to(metadata, 'UTF8')))
                  || convert_to(metadata, 'UTF8'))
$$;

-- 2. Each session takes positions 64 at a time instead of locking the identity sequence for
--    every event. The log's order is (tx_id, position): positions only need to be unique and
--    to increase within one transaction, which a session's cached range guarantees. Gaps in
--    positions were already normal (rolled-back appends leave them).
alter table events alter column position set cache 64;
