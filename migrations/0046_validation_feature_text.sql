-- A remembered item keeps the text its features are read from (the prepared text,
-- zlib-compressed when long: guards/validation/bags.py), so a near-duplicate is decided on
-- the exact weighted similarity of the two feature bags, not on the 32-bin MinHash
-- estimate alone (audit26 A3 M1: "Order #48213 …" was rejected as a near-duplicate of
-- "Order #48214 …" on hash luck). NULL for the rows remembered before: such a row is read
-- through its preview when the preview holds its whole text, else the estimate decides as
-- it did, until the row leaves the window (validation.window_days).
ALTER TABLE validation_items ADD COLUMN feature_text BLOB;
