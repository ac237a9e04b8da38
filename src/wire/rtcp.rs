//! TODO(rtcp): filled in by the wire work.
