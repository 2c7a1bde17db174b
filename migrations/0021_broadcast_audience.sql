-- Broadcasts freeze their audience when they start (`broadcast.audience_frozen`): every
-- recipient becomes a row of `broadcast_recipients` at once, `pending` until its outcome, and
-- every customer of the segment left out becomes a `skipped` row with its reason. A broadcast
-- cancelled while recipients were pending leaves them `cancelled` (a late outcome of a message
-- that was in flight still replaces its row).

alter table broadcast_recipients
    drop constraint broadcast_recipients_state_check,
    add constraint broadcast_recipients_state_check
        check (state in ('pending', 'delivered', 'failed', 'skipped', 'cancelled'));

-- Paging one broadcast's recipients in one state, in customer order.
create index broadcast_recipients_state_idx
    on broadcast_recipients (broadcast_id, state, customer_id);

-- Customers of the segment left out at the start (counted in `skipped` too).
alter table broadcasts
    add column excluded integer not null default 0;

-- The scheduler's question: which scheduled broadcasts are due.
create index broadcasts_due_idx on broadcasts (scheduled_at) where state = 'scheduled';
