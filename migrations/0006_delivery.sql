-- Outbound delivery's own bookkeeping (bot/src/delivery.rs).
--
-- Delivery outcomes of agent replies are events on the ticket (`ticket.reply_delivered`,
-- `ticket.reply_delivery_failed`); these tables only hold what the delivery worker needs
-- besides: where it stands in the log, and which satisfaction prompts it has sent (the log has
-- no event for a prompt).

-- One row per delivery worker: the log position up to which every event has been handled.
-- Like projection_checkpoints, a position is (transaction id, sequence); (0, 0) is the start.
create table delivery_checkpoints (
    worker       text        not null,
    position_tx  bigint      not null default 0,
    position_seq bigint      not null default 0,
    updated_at   timestamptz not null default now(),
    constraint delivery_checkpoints_pkey primary key (worker),
    constraint delivery_checkpoints_worker_check check (char_length(worker) between 1 and 100)
);

-- One row per `ticket.resolved` event whose satisfaction prompt Telegram accepted.
create table delivery_csat_prompts (
    resolved_event_id   uuid        not null,
    ticket_id           uuid        not null,
    telegram_message_id integer     not null,
    sent_at             timestamptz not null default now(),
    constraint delivery_csat_prompts_pkey primary key (resolved_event_id)
);
