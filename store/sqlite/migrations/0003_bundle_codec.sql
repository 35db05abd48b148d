-- Version 3: bundles may be stored compressed. codec '' is the bundle as
-- given; 'zstd' is one zstd frame of it. A 50-package SPDX bundle (about
-- 96 KB of base64 JSON) is about 14 KB compressed.
ALTER TABLE attestation_predicates ADD COLUMN codec TEXT NOT NULL DEFAULT '';
