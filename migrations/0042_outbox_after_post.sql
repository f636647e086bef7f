-- A level between urgent and ordinary in the outbox's priority lane (review24 trial H1):
-- a post retried after a 5xx that a person's edit (an acknowledgement, a resolution)
-- waits behind goes before the lane's ordinary posts, but behind its P0 pages and urgent
-- edits, which it held back for as long as Slack refused it. Urgent moves from 0 to -1
-- and the new level takes 0; ordinary stays 1 (the column's default), routine 2.
UPDATE outbox SET priority = -1 WHERE priority = 0;
