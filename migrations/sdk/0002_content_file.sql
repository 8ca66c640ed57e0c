-- Content moves out of SQLite into the append-only content file beside it (`<data file>-content`):
-- a row keeps where its record's input, output and metadata lie there, one after the other, and
-- an outbox row where its batch's body lies (right after the batch's content; `body` stays empty).
-- Writing 2 KiB per record through SQLite's write-ahead log cost about four times the bytes in
-- kernel copies and page zeroing, and capped the SDK at ~30,000 records/s. Rows written before
-- this migration keep their content and bodies in the BLOB columns.
ALTER TABLE openings ADD COLUMN content_offset INTEGER;
ALTER TABLE openings ADD COLUMN input_len INTEGER;
ALTER TABLE openings ADD COLUMN output_len INTEGER;
ALTER TABLE openings ADD COLUMN metadata_len INTEGER;
ALTER TABLE outbox ADD COLUMN body_offset INTEGER;
ALTER TABLE outbox ADD COLUMN body_len INTEGER;
