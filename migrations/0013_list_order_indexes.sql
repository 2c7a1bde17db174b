-- The ticket list by creation and the customer list (by registration) are paged by keyset in
-- both directions: an index on each order lets a page, from either end, read only its own
-- rows. Creation order is the one a client pages by while tickets change, since a ticket
-- never moves in it.
create index on tickets (created_at, id);
create index on customers (registered_at, id);
