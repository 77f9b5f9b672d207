"""The indelible record: RFC 9162 Merkle tree hashing, sealed entries, signed tree heads."""
