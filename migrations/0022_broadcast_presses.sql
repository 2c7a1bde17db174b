-- Read model "broadcasts" (projections/src/broadcasts/presses.rs): what customers did with a
-- broadcast besides receiving it, and how fast it went out.

-- Presses of a broadcast's callback buttons, one row per customer and button: how often the
-- customer pressed it (`broadcast.button_pressed`, one event per Telegram update), and when
-- first and last.
create table broadcast_button_presses (
    broadcast_id     uuid        not null,
    customer_id      bigint      not null,
    -- The button's place among all the broadcast's buttons, row by row, from 0.
    button_index     smallint    not null,
    presses          integer     not null,
    first_pressed_at timestamptz not null,
    last_pressed_at  timestamptz not null,
    constraint broadcast_button_presses_pkey primary key (broadcast_id, customer_id, button_index),
    constraint broadcast_button_presses_index_check check (button_index >= 0),
    constraint broadcast_button_presses_presses_check check (presses >= 1)
);

-- Recipients given an outcome (delivered or failed; skips are not sends), per second of the
-- time the outcomes were recorded: the current sending rate is read from the last seconds.
create table broadcast_send_rate (
    broadcast_id uuid        not null,
    second       timestamptz not null,
    sent         integer     not null,
    constraint broadcast_send_rate_pkey primary key (broadcast_id, second),
    constraint broadcast_send_rate_sent_check check (sent >= 0)
);
