-- The projector runtime: where each read model stands in the log.
--
-- One row per projection and copy: `live` is the copy readers query (tables in `public`),
-- `shadow` a rebuild in progress (tables in `ld_shadow`, swapped into `public` when caught up).
-- A projection writes its tables and its row here in one transaction, so a checkpoint never
-- runs ahead of (or behind) what the tables hold.

create schema if not exists ld_shadow;

create table projection_checkpoints (
    projection text not null,
    target text not null,
    -- The projection code's version that built this copy.
    version integer not null,
    -- The last event applied (0, 0: none yet).
    position_tx bigint not null default 0,
    position_seq bigint not null default 0,
    -- Events this copy has seen since it started from the beginning of the log.
    events_seen bigint not null default 0,
    -- Set when the projection stopped on an event; cleared when it moves past it.
    failed_position_tx bigint,
    failed_position_seq bigint,
    failed_event_id uuid,
    failed_event_type text,
    failed_error text,
    failed_at timestamptz,
    -- `ledgerdesk replay` asks the process running the projection to rebuild it.
    rebuild_requested_at timestamptz,
    started_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint projection_checkpoints_pkey primary key (projection, target),
    constraint projection_checkpoints_target_check check (target in ('live', 'shadow'))
);
