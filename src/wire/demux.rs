//! TODO(demux): filled in by the wire work.
