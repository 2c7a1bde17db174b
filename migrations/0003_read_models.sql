-- Read models: tables the projections in projections/src/ build from the event log.
--
-- Rules these tables follow so the projector runtime can rebuild any of them into the shadow
-- schema (`create table ld_shadow.x (like public.x including all)`) and swap the copy in:
-- no foreign keys, no views or functions over them, no serial or identity columns, indexes left
-- unnamed (Postgres picks the same default name in both schemas) and constraints named with
-- their default names (`tickets_pkey`).
--
-- Aggregate rows carry `version`: the stream version of the last event they reflect. A
-- projection skips events at or below it, so applying an event twice changes nothing.

-- projection "tickets" --------------------------------------------------------------------------

create table tickets (
    id                    uuid        not null,
    customer_id           bigint      not null,
    channel               text        not null,
    status                text        not null,
    priority              text        not null,
    category_id           uuid,
    assignee_id           uuid,
    tags                  text[]      not null default '{}',
    -- First line of the first customer message (text or caption), or its kind.
    subject               text        not null,
    first_message_id      uuid,
    customer_messages     integer     not null default 0,
    agent_messages        integer     not null default 0,
    notes                 integer     not null default 0,
    -- Customer messages since the last agent reply.
    unread_by_agents      integer     not null default 0,
    created_at            timestamptz not null,
    first_response_at     timestamptz,
    resolved_at           timestamptz,
    closed_at             timestamptz,
    last_message_id       uuid,
    last_message_at       timestamptz,
    last_message_direction text,
    last_message_preview  text,
    last_activity_at      timestamptz not null,
    rating                smallint,
    rating_comment        text,
    version               bigint      not null,
    constraint tickets_pkey primary key (id),
    constraint tickets_status_check check (status in ('new', 'open', 'pending', 'resolved', 'closed')),
    constraint tickets_priority_check check (priority in ('low', 'normal', 'high', 'urgent')),
    constraint tickets_rating_check check (rating between 1 and 5),
    constraint tickets_last_message_direction_check check (last_message_direction in ('in', 'out'))
);

create index on tickets (last_activity_at desc);
create index on tickets (status, last_activity_at desc);
create index on tickets (assignee_id, last_activity_at desc);
create index on tickets (category_id, last_activity_at desc);
create index on tickets (customer_id, last_activity_at desc);
create index on tickets using gin (tags);

-- Customer messages (direction 'in') and agent replies ('out'), in ticket order.
create table messages (
    id                    uuid        not null,
    ticket_id             uuid        not null,
    -- The ticket stream version of the event that posted it: the order within the ticket.
    seq                   bigint      not null,
    direction             text        not null,
    author_agent_id       uuid,
    kind                  text        not null,
    text                  text,
    caption               text,
    file_id               text,
    file_unique_id        text,
    -- Body details that are neither text nor a file: location, venue, contact, sticker emoji,
    -- document file name; for agent replies, the media sent ([{kind, file_id}]).
    details               jsonb,
    forward_origin        jsonb,
    telegram_message_id   integer,
    reply_to_telegram_message_id integer,
    template_id           uuid,
    -- Agent replies only: pending, delivered or failed.
    delivery_state        text,
    delivered_telegram_message_id integer,
    failure_reason        text,
    failure_retryable     boolean,
    delivery_updated_at   timestamptz,
    edited_at             timestamptz,
    created_at            timestamptz not null,
    version               bigint      not null,
    constraint messages_pkey primary key (id),
    constraint messages_direction_check check (direction in ('in', 'out')),
    constraint messages_delivery_state_check check (delivery_state in ('pending', 'delivered', 'failed'))
);

create unique index on messages (ticket_id, seq);
create index on messages using gin (to_tsvector('simple', coalesce(text, '') || ' ' || coalesce(caption, '')));

create table ticket_notes (
    id                    uuid        not null,
    ticket_id             uuid        not null,
    seq                   bigint      not null,
    agent_id              uuid        not null,
    text                  text        not null,
    created_at            timestamptz not null,
    constraint ticket_notes_pkey primary key (id)
);

create unique index on ticket_notes (ticket_id, seq);

-- projection "customers" ------------------------------------------------------------------------

create table customers (
    id                    bigint      not null,
    first_name            text        not null,
    last_name             text,
    username              text,
    language_code         text,
    registered_at         timestamptz not null,
    profile_updated_at    timestamptz,
    last_seen_at          timestamptz,
    blocked_bot           boolean     not null default false,
    banned                boolean     not null default false,
    ban_reason            text,
    banned_at             timestamptz,
    opted_out_of_broadcasts boolean   not null default false,
    tickets_total         integer     not null default 0,
    tickets_open          integer     not null default 0,
    -- The most recently (re)opened ticket that is still new, open or pending.
    open_ticket_id        uuid,
    version               bigint      not null,
    constraint customers_pkey primary key (id)
);

create index on customers (lower(username));
create index on customers (last_seen_at desc);

-- Each customer's tickets as the customer stream tracks them; also maps a ticket to its
-- customer for `last_seen_at`.
create table customer_tickets (
    ticket_id             uuid        not null,
    customer_id           bigint      not null,
    category_id           uuid,
    state                 text        not null,
    opened_at             timestamptz not null,
    -- When it last became active (opened or reopened).
    activated_at          timestamptz not null,
    last_message_at       timestamptz,
    constraint customer_tickets_pkey primary key (ticket_id),
    constraint customer_tickets_state_check check (state in ('active', 'resolved', 'closed'))
);

create index on customer_tickets (customer_id);

-- projection "directory" ------------------------------------------------------------------------

create table agents (
    id                    uuid        not null,
    email                 text        not null,
    name                  text        not null,
    role                  text        not null,
    category_ids          uuid[]      not null default '{}',
    active                boolean     not null default true,
    invited_by            uuid,
    invited_at            timestamptz not null,
    deactivated_at        timestamptz,
    password_changed_at   timestamptz,
    updated_at            timestamptz not null,
    version               bigint      not null,
    constraint agents_pkey primary key (id),
    constraint agents_role_check check (role in ('admin', 'agent', 'auditor'))
);

create index on agents (lower(email));

-- Removed categories and templates stay, with `removed_at`, so old tickets and replies can
-- still show their names.
create table categories (
    id                    uuid        not null,
    name                  text        not null,
    created_at            timestamptz not null,
    updated_at            timestamptz not null,
    removed_at            timestamptz,
    constraint categories_pkey primary key (id)
);

create table templates (
    id                    uuid        not null,
    title                 text        not null,
    text                  text        not null,
    created_by            uuid        not null,
    created_at            timestamptz not null,
    updated_at            timestamptz not null,
    removed_at            timestamptz,
    constraint templates_pkey primary key (id)
);

-- One row (id = true) once any settings event happened; the settings stream version in
-- `version` guards every row of categories and templates as well.
create table support_settings (
    id                    boolean     not null,
    greeting              text,
    reopen_window_seconds bigint      not null,
    updated_at            timestamptz not null,
    version               bigint      not null,
    constraint support_settings_pkey primary key (id),
    constraint support_settings_id_check check (id)
);

-- projection "broadcasts" -----------------------------------------------------------------------

create table broadcasts (
    id                    uuid        not null,
    state                 text        not null,
    created_by            uuid        not null,
    -- The audience segment as the domain serializes it ({"type": "by_language", …}).
    audience              jsonb       not null,
    audience_kind         text        not null,
    text                  text,
    media_kind            text,
    media_file_id         text,
    buttons               jsonb       not null,
    scheduled_at          timestamptz,
    total_recipients      integer,
    delivered             integer     not null default 0,
    failed                integer     not null default 0,
    skipped               integer     not null default 0,
    created_at            timestamptz not null,
    updated_at            timestamptz not null,
    started_at            timestamptz,
    paused_at             timestamptz,
    completed_at          timestamptz,
    cancelled_at          timestamptz,
    version               bigint      not null,
    constraint broadcasts_pkey primary key (id),
    constraint broadcasts_state_check check (state in ('draft', 'scheduled', 'running', 'paused', 'completed', 'cancelled'))
);

create index on broadcasts (created_at desc);
create index on broadcasts (state, created_at desc);

create table broadcast_recipients (
    broadcast_id          uuid        not null,
    customer_id           bigint      not null,
    state                 text        not null,
    telegram_message_id   integer,
    reason                text,
    retryable             boolean,
    updated_at            timestamptz not null,
    constraint broadcast_recipients_pkey primary key (broadcast_id, customer_id),
    constraint broadcast_recipients_state_check check (state in ('delivered', 'failed', 'skipped'))
);

create index on broadcast_recipients (broadcast_id, state);
create index on broadcast_recipients (customer_id);

-- projection "dashboard" ------------------------------------------------------------------------

create table dashboard_tickets (
    ticket_id             uuid        not null,
    category_id           uuid,
    status                text        not null,
    opened_at             timestamptz not null,
    first_response_at     timestamptz,
    first_response_seconds double precision,
    -- The last resolve, cleared by a reopen (kept through a close).
    resolved_at           timestamptz,
    resolution_seconds    double precision,
    version               bigint      not null,
    constraint dashboard_tickets_pkey primary key (ticket_id)
);

create index on dashboard_tickets (status);
create index on dashboard_tickets (category_id);
create index on dashboard_tickets (first_response_at);
create index on dashboard_tickets (resolved_at);
