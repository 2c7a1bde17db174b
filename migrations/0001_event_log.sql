-- The append-only event log.
--
-- Ordering: `position` comes from an identity column and `tx_id` is the writing transaction's
-- 64-bit id. Readers order by (tx_id, position) and only read rows whose tx_id lies below the
-- oldest transaction still running (pg_snapshot_xmin). Every row below that line is final: no
-- transaction can commit there any more, so a reader that advances its cursor never skips an
-- event that commits late. See eventlog/src/postgres.rs for the full argument.

create table events (
    position        bigint      generated always as identity,
    tx_id           bigint      not null default (pg_current_xact_id()::text::bigint),
    stream_id       text        not null,
    stream_version  bigint      not null,
    event_id        uuid        not null,
    event_type      text        not null,
    schema_version  integer     not null,
    payload         jsonb       not null,
    metadata        jsonb       not null,
    recorded_at     timestamptz not null default now(),
    prev_hash       bytea,
    hash            bytea       not null,
    -- The log's order is (tx_id, position): readers walk this index.
    constraint events_pkey primary key (tx_id, position),
    constraint events_stream_version_key unique (stream_id, stream_version),
    constraint events_event_id_key unique (event_id),
    constraint events_stream_id_check check (char_length(stream_id) between 1 and 200),
    constraint events_stream_version_check check (stream_version >= 0),
    constraint events_event_type_check check (char_length(event_type) between 1 and 200),
    constraint events_schema_version_check check (schema_version >= 1),
    constraint events_hash_check check (octet_length(hash) = 32)
);

-- The log is append-only: the database itself refuses to change or remove an event.
create function events_refuse_change() returns trigger
language plpgsql as $$
begin
    raise exception 'the event log is append-only: % on events is not allowed', tg_op
        using errcode = 'restrict_violation';
end;
$$;

-- Statement-level, so even a statement that would touch no row is refused.
create trigger events_append_only
    before update or delete or truncate on events
    for each statement execute function events_refuse_change();

-- Idempotency: one row per key that was applied, with the events it appended.
create table idempotency_keys (
    key         text        not null,
    event_ids   uuid[]      not null,
    recorded_at timestamptz not null default now(),
    constraint idempotency_keys_pkey primary key (key),
    constraint idempotency_keys_key_check check (char_length(key) between 1 and 200)
);

-- The per-stream hash chain: sha256 over the previous hash and the length-prefixed UTF-8 of
-- the event type, the payload and the metadata (jsonb's canonical text form, `payload::text`).
create function event_hash(prev bytea, event_type text, payload text, metadata text)
returns bytea
language sql immutable parallel safe as $$
    select sha256(coalesce(prev, ''::bytea)
                  || int4send(octet_length(t)) || t
                  || int4send(octet_length(p)) || p
                  || int4send(octet_length(m)) || m)
      from (select convert_to(event_type, 'UTF8') as t,
                   convert_to(payload, 'UTF8') as p,
                   convert_to(metadata, 'UTF8') as m) as parts
$$;

-- Appends one or more streams' events atomically, in one round trip.
--
-- Streams are given as parallel arrays (id, expected version); events as parallel arrays with
-- the index (1-based) of their stream. Expected version: n >= 0 exact, -1 no stream, -2 any,
-- -3 stream exists.
--
-- Order of work matters for gap-free reading: every stream's current version is read before
-- this transaction writes anything (and so before it gets a transaction id). A transaction that
-- appends after another on the same stream saw that one committed, so it takes a larger
-- transaction id and readers see the stream's versions in order.
create function append_events(
    p_key            text,
    p_streams        text[],
    p_expected       bigint[],
    p_stream_of      integer[],
    p_event_ids      uuid[],
    p_types          text[],
    p_schema         integer[],
    p_payloads       text[],
    p_metadata       text[]
) returns table (
    event_id       uuid,
    stream_id      text,
    stream_version bigint,
    tx_id          bigint,
    event_position bigint,
    replayed       boolean
)
language plpgsql as $$
#variable_conflict use_column
declare
    n_streams  integer := coalesce(array_length(p_streams, 1), 0);
    versions   bigint[] := array_fill(-1::bigint, array[greatest(n_streams, 1)]);
    hashes     bytea[]  := array_fill(null::bytea, array[greatest(n_streams, 1)]);
    s          integer;
    e          integer;
    cur_v      bigint;
    cur_h      bytea;
    expected   bigint;
    new_hash   bytea;
    inserted   integer;
    v_payload  jsonb;
    v_metadata jsonb;
begin
    -- 1. Read and check every stream (no writes yet).
    for s in 1 .. n_streams loop
        select ev.stream_version, ev.hash into cur_v, cur_h
          from events ev
         where ev.stream_id = p_streams[s]
         order by ev.stream_version desc
         limit 1;
        if not found then
            cur_v := -1;
            cur_h := null;
        end if;
        expected := p_expected[s];
        if (expected >= 0 and cur_v <> expected)
           or (expected = -1 and cur_v <> -1)
           or (expected = -3 and cur_v = -1) then
            raise exception 'wrong expected version'
                using errcode = 'LD001',
                      detail = json_build_object('stream', p_streams[s], 'actual', cur_v)::text;
        end if;
        versions[s] := cur_v;
        hashes[s] := cur_h;
    end loop;

    -- 2. Claim the idempotency key; a key already claimed means the work was done before.
    if p_key is not null then
        insert into idempotency_keys as k (key, event_ids)
        values (p_key, coalesce(p_event_ids, '{}'))
        on conflict (key) do nothing;
        get diagnostics inserted = row_count;
        if inserted = 0 then
            return query
                select ev.event_id, ev.stream_id, ev.stream_version, ev.tx_id, ev.position, true
                  from idempotency_keys k
                  join events ev on ev.event_id = any (k.event_ids)
                 where k.key = p_key
                 order by ev.tx_id, ev.position;
            if not found then
                -- The key was applied with no events: answer with an empty replay marker.
                return query select null::uuid, null::text, null::bigint, null::bigint, null::bigint, true;
            end if;
            return;
        end if;
    end if;

    -- 3. Append, chaining each stream's hashes.
    for e in 1 .. coalesce(array_length(p_event_ids, 1), 0) loop
        s := p_stream_of[e];
        versions[s] := versions[s] + 1;
        v_payload := p_payloads[e]::jsonb;
        v_metadata := p_metadata[e]::jsonb;
        new_hash := event_hash(hashes[s], p_types[e], v_payload::text, v_metadata::text);
        return query
            insert into events as ev (stream_id, stream_version, event_id, event_type, schema_version,
                                      payload, metadata, prev_hash, hash)
            values (p_streams[s], versions[s], p_event_ids[e], p_types[e], p_schema[e],
                    v_payload, v_metadata, hashes[s], new_hash)
            returning ev.event_id, ev.stream_id, ev.stream_version, ev.tx_id, ev.position, false;
        hashes[s] := new_hash;
    end loop;
end;
$$;
