-- Anchors of the whole log: signed records of every stream's chain head up to a position.
--
-- A stream's hash chain shows a changed or reordered event, but not its newest events being
-- removed: what is left is still a valid chain. An anchor records, at a log position, the last
-- version and hash of each stream that changed since the anchor before it, and is signed
-- (ed25519) with a key the server keeps outside the database. `ledgerdesk audit verify` checks
-- each anchor's signature and link to the one before, and that every stream still holds the
-- event its latest anchor names, with that hash. See eventlog/src/postgres/audit.rs.
--
-- `signature` signs: a fixed label, the previous anchor's signature (empty for the first), the
-- position (tx_id, position), the number of heads and `heads_digest`, which is sha256 over
-- the heads in byte order of their stream ids (see the module for the exact layout).

create table log_anchors (
    seq                bigint      generated always as identity,
    tx_id              bigint      not null,
    position           bigint      not null,
    created_at         timestamptz not null default now(),
    previous_signature bytea,
    head_count         bigint      not null,
    heads_digest       bytea       not null,
    public_key         bytea       not null,
    signature          bytea       not null,
    constraint log_anchors_pkey primary key (seq),
    constraint log_anchors_head_count_check check (head_count >= 0),
    constraint log_anchors_heads_digest_check check (octet_length(heads_digest) = 32),
    constraint log_anchors_public_key_check check (octet_length(public_key) = 32),
    constraint log_anchors_signature_check check (octet_length(signature) = 64)
);

create table log_anchor_heads (
    anchor_seq     bigint not null,
    stream_id      text   not null,
    stream_version bigint not null,
    hash           bytea  not null,
    constraint log_anchor_heads_pkey primary key (anchor_seq, stream_id),
    constraint log_anchor_heads_anchor_fkey foreign key (anchor_seq) references log_anchors (seq)
);

-- The latest anchored head of each stream is what verification compares with the log.
create index log_anchor_heads_stream_idx on log_anchor_heads (stream_id, stream_version desc);

-- Anchors are evidence: like the log, they are never changed nor removed.
create function log_anchors_refuse_change() returns trigger
language plpgsql as $$
begin
    raise exception 'log anchors are append-only: % on % is not allowed', tg_op, tg_table_name
        using errcode = 'restrict_violation';
end;
$$;

create trigger log_anchors_append_only
    before update or delete or truncate on log_anchors
    for each statement execute function log_anchors_refuse_change();

create trigger log_anchor_heads_append_only
    before update or delete or truncate on log_anchor_heads
    for each statement execute function log_anchors_refuse_change();
