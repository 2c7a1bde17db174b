-- Readers of the log wait only for transactions that append to it.
--
-- Until now a reader read rows below pg_snapshot_xmin, the oldest transaction id still running
-- anywhere on the server: a transaction writing to another table, or to another database of
-- the same server, held every reader back for as long as it stayed open. From here on an
-- appending transaction registers itself before it takes its transaction id, and readers
-- compute their line from the registered appenders alone (eventlog/src/postgres/horizon.rs,
-- docs/architecture.md "The read horizon" has the argument).
--
-- Registration is a shared transaction-level advisory lock of class 'LDAP' (1279541584) whose
-- second key is the low 32 bits of a lower bound of the transaction id the appender will take:
-- the xmax of the statement's snapshot, taken before the id exists. The lock goes when the
-- transaction ends (commit, rollback, lost connection), after the transaction has left the
-- server's list of running transactions. A transaction-local setting remembers that this
-- transaction registered, so its later statements skip the work.
--
-- The first write of an append is an insert into `events` or into `idempotency_keys` (a keyed
-- append claims its key first), so a statement-level trigger on each registers before the
-- statement writes a row. A transaction that wrote anything else first already has its id:
-- registering then would come too late to protect readers, so its append is refused.
create function events_register_append() returns trigger
language plpgsql as $$
begin
    if current_setting('ledgerdesk.append_registered', true) = 'on' then
        return null;
    end if;
    if pg_current_xact_id_if_assigned() is not null then
        raise exception 'an append must be the first write of its transaction'
            using errcode = 'LD002',
                  hint = 'append in a transaction of its own, or before writing anything else';
    end if;
    perform pg_advisory_xact_lock_shared(
        1279541584,
        pg_snapshot_xmax(pg_current_snapshot())::text::bigint::bit(32)::integer);
    perform set_config('ledgerdesk.append_registered', 'on', true);
    return null;
end;
$$;

create trigger events_register_append
    before insert on events
    for each statement execute function events_register_append();

create trigger idempotency_keys_register_append
    before insert on idempotency_keys
    for each statement execute function events_register_append();
