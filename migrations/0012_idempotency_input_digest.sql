-- An idempotency key is stored with a digest of the input it stood for, so that a key reused
-- for other work can be told from a retry of the same work: the log stores the digest and hands
-- it back with the first receipt; the caller compares. Keys stored before have no digest, and
-- a caller accepts a replay of those as before.
--
-- append_events and append_batch take the digests as a last, optional argument (one per
-- request for the batch); what they do otherwise is unchanged (see 0001 and 0008/0009).
alter table idempotency_keys
    add column input_digest bytea,
    add constraint idempotency_keys_input_digest_check
        check (octet_length(input_digest) between 1 and 64);

drop function append_events(text, text[], bigint[], integer[], uuid[], text[], integer[], text[],
                            text[]);

create function append_events(
    p_key            text,
    p_streams        text[],
    p_expected       bigint[],
    p_stream_of      integer[],
    p_event_ids      uuid[],
    p_types          text[],
    p_schema         integer[],
    p_payloads       text[],
    p_metadata       text[],
    p_input_digest   bytea default null
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
        insert into idempotency_keys as k (key, event_ids, input_digest)
        values (p_key, coalesce(p_event_ids, '{}'), p_input_digest)
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

drop function append_batch(text[], integer[], integer[], text[], bigint[], integer[], uuid[],
                           text[], integer[], text[], text[]);

create function append_batch(
    p_keys        text[],
    p_slots_end   integer[],
    p_events_end  integer[],
    p_streams     text[],
    p_expected    bigint[],
    p_slot_of     integer[],
    p_event_ids   uuid[],
    p_types       text[],
    p_schema      integer[],
    p_payloads    text[],
    p_metadata    text[],
    p_digests     bytea[] default null
) returns table (
    o_request  integer,
    o_refusal  text,
    o_stream   text,
    o_version  bigint,
    o_event_id uuid,
    o_tx_id    bigint,
    o_position bigint
)
language plpgsql as $$
declare
    n_requests integer := coalesce(array_length(p_keys, 1), 0);
    n_slots    integer := coalesce(array_length(p_streams, 1), 0);
    names      text[];
    versions   bigint[];
    hashes     bytea[];
    slot_at    integer[] := '{}';
    claimed    text[] := '{}';
    r          integer;
    s          integer;
    e          integer;
    d          integer;
    slot_lo    integer := 1;
    event_lo   integer := 1;
    slot_hi    integer;
    event_hi   integer;
    bad        integer;
    cur_v      bigint;
    expected   bigint;
    inserted   integer;
    n          integer := 0;
    new_hash   bytea;
    i_event    integer[] := '{}';
    i_version  bigint[] := '{}';
    i_prev     bytea[] := '{}';
    i_hash     bytea[] := '{}';
    i_payload  jsonb[] := '{}';
    i_meta     jsonb[] := '{}';
    parsed_payload jsonb;
    parsed_meta    jsonb;
begin
    -- 1. Every stream's last version and hash, read before anything is written.
    select array_agg(d.name order by d.name),
           array_agg(coalesce(l.v, -1) order by d.name),
           array_agg(l.h order by d.name)
      into names, versions, hashes
      from (select distinct u.name from unnest(p_streams) as u (name)) as d
      left join lateral (
          select ev.stream_version as v, ev.hash as h
            from events ev
           where ev.stream_id = d.name
           order by ev.stream_version desc
           limit 1) as l on true;
    for s in 1 .. n_slots loop
        slot_at[s] := array_position(names, p_streams[s]);
    end loop;

    -- 2. Each request in turn: check, claim its key, lay out its events.
    for r in 1 .. n_requests loop
        slot_hi := p_slots_end[r];
        event_hi := p_events_end[r];
        bad := 0;
        for s in slot_lo .. slot_hi loop
            cur_v := versions[slot_at[s]];
            expected := p_expected[s];
            if (expected >= 0 and cur_v <> expected)
               or (expected = -1 and cur_v <> -1)
               or (expected = -3 and cur_v = -1) then
                bad := s;
                exit;
            end if;
        end loop;

        if p_keys[r] is not null then
            if p_keys[r] = any (claimed) then
                -- An earlier request of this batch applied the key.
                bad := -1;
            elsif bad > 0 then
                -- A retry of applied work may no longer match: the key answers first.
                if exists (select 1 from idempotency_keys k where k.key = p_keys[r]) then
                    bad := -1;
                end if;
            else
                insert into idempotency_keys (key, event_ids, input_digest)
                values (p_keys[r], coalesce(p_event_ids[event_lo : event_hi], '{}'), p_digests[r])
                on conflict (key) do nothing;
                get diagnostics inserted = row_count;
                if inserted = 0 then
                    bad := -1;
                else
                    claimed := claimed || p_keys[r];
                end if;
            end if;
        end if;

        if bad = -1 then
            o_request := r;
            o_refusal := 'applied';
            o_stream := null;
            o_version := null;
            return next;
        elsif bad > 0 then
            o_request := r;
            o_refusal := 'conflict';
            o_stream := p_streams[bad];
            o_version := nullif(versions[slot_at[bad]], -1);
            return next;
        else
            -- What the chain computes and the parsed documents are kept per event; the insert
            -- takes the rest from the input arrays by index.
            for e in event_lo .. event_hi loop
                d := slot_at[p_slot_of[e]];
                versions[d] := versions[d] + 1;
                parsed_payload := p_payloads[e]::jsonb;
                parsed_meta := p_metadata[e]::jsonb;
                new_hash := event_hash(hashes[d], p_types[e], parsed_payload::text,
                                       parsed_meta::text);
                n := n + 1;
                i_payload[n] := parsed_payload;
                i_meta[n] := parsed_meta;
                i_event[n] := e;
                i_version[n] := versions[d];
                i_prev[n] := hashes[d];
                i_hash[n] := new_hash;
                hashes[d] := new_hash;
            end loop;
        end if;
        slot_lo := slot_hi + 1;
        event_lo := event_hi + 1;
    end loop;

    -- 3. Every appended event in one insert, in request order.
    o_request := null;
    o_refusal := null;
    return query
        insert into events as ev (stream_id, stream_version, event_id, event_type, schema_version,
                                  payload, metadata, prev_hash, hash)
        select p_streams[p_slot_of[u.e]], u.v, p_event_ids[u.e], p_types[u.e], p_schema[u.e],
               u.payload, u.meta, u.prev, u.h
          from unnest(i_event, i_version, i_prev, i_hash, i_payload, i_meta)
               as u (e, v, prev, h, payload, meta)
        returning null::integer, null::text, ev.stream_id, ev.stream_version, ev.event_id,
                  ev.tx_id, ev.position;
end;
$$;
