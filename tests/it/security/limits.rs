//! Bounded work per request: slow clients, connection counts, item counts, nesting, rates.
