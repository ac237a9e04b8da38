//! Shared helpers for Tern's benchmark binaries.
