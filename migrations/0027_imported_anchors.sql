-- Anchors brought in by `ledgerdesk import`.
--
-- An anchor signs a position of the log it was written in. An import gives the events new
-- positions (a position names a place in one database's log), so an imported anchor keeps
-- the position it signs, and records here the position in this log of the last event it
-- covers: the place its line had in the file. A new anchor covers what came after it from
-- there. Both are null for the anchors written in this log.

alter table log_anchors
    add column covers_tx_id    bigint,
    add column covers_position bigint,
    add constraint log_anchors_covers_check
        check ((covers_tx_id is null) = (covers_position is null));
