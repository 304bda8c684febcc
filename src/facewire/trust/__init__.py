"""Trust: consent, keys, audit log, provenance (C2PA) and watermarking of what facewire renders."""
