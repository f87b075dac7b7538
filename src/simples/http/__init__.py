"""Pure, I/O-free HTTP helpers: each module parses or formats one thing."""
