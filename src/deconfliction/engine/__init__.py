"""The functional core: the in-memory picture, its indexes and the check rules. No I/O, no clock."""
