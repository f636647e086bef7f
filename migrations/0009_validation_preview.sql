-- What a rejection matched, for people (audit G, finding 6): an accepted item keeps
-- at most 120 characters of its text, and a duplicate rejection copies the preview of
-- the item it matched (items are forgotten after the window, rejections are kept
-- longer). Rows from before this migration have NULL and are shown as before (#id).
ALTER TABLE validation_items ADD COLUMN preview TEXT
    CHECK (preview IS NULL OR length(preview) <= 120);
ALTER TABLE validation_rejections ADD COLUMN matched_preview TEXT
    CHECK (matched_preview IS NULL OR length(matched_preview) <= 120);
