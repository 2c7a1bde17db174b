-- What Telegram tells about a customer message's file (durations, sizes, MIME types,
-- dimensions, thumbnails, music titles, sticker sets), the album it belongs to and when a
-- forwarded message was first sent (projections/src/tickets.rs).
--
-- Existing rows start without them; the messages projection's version 3 rebuilds the table in
-- the shadow schema from the log and swaps it in, while the live table keeps serving.
alter table messages add column media jsonb;
alter table messages add column media_group_id text;
alter table messages add column forwarded_at timestamptz;

-- The messages of one album, for the first of them to show them all.
create index messages_media_group_idx on messages (ticket_id, media_group_id, seq)
    where media_group_id is not null;
