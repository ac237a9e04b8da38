//! TODO(stun): filled in by the wire work.
